// RUN: attnc-opt %s -p 'training-step{lr=0.1},lower-to-tinycl' --print-debuginfo 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'training-step{lr=0.1},lower-to-tinycl{grad-frac-bits=10}' | filecheck --check-prefix=GRAD10 %s
// RUN: not attnc-opt %s -p 'training-step,lower-to-tinycl{grad-frac-bits=16}' 2>&1 | filecheck --check-prefix=BADGRAD %s

// A training step on the array: the forward linear is a tinycl.mac forward; its input gradient (dy W) a
// tinycl.mac input-gradient and its weight gradient (dyᵀ x) a tinycl.mac weight-gradient, the gradient operand
// in the gradient format (16/12 by default at 16/8: four more fractional bits), the other operand in the data
// (weight) format, each with an accumulator wide enough not to overflow, requantised to the gradient format.
// The tinycl.config of a training step records the gradient format.
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %s = nn.param @shift : tensor<8xf32> loc("shift")
  %h = nn.add %x, %s : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("shift")
  %w = nn.param @fc.weight : tensor<3x8xf32> loc("fc")
  %y = nn.linear %h, %w : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x3xf32> loc("fc")
  func.return %y : tensor<4x3xf32>
}
// CHECK:      builtin.module attributes {attnc.updates = ["shift", "fc.weight"], tinycl.config = {{.*}}grad_frac_bits = 12 : i64}}
// CHECK:      tinycl.mac forward %y_x_q, %y_w_q : (tensor<4x8x!tinycl.fixed<16, 8>>, tensor<3x8x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<37, 16>> loc("fc")
// CHECK:      %[[DY:.*]] = grad.cross_entropy_backward %y, %labels
// CHECK-NEXT: %[[G:.*]] = tinycl.quantize %[[DY]] nearest-even saturate : (tensor<4x3xf32>) -> tensor<4x3x!tinycl.fixed<16, 12>> loc("fc")
// CHECK-NEXT: %[[W:.*]] = tinycl.quantize %w nearest-even saturate : (tensor<3x8xf32>) -> tensor<3x8x!tinycl.fixed<16, 8>> loc("fc")
// CHECK-NEXT: %[[DXACC:.*]] = tinycl.mac input-gradient %[[G]], %[[W]] : (tensor<4x3x!tinycl.fixed<16, 12>>, tensor<3x8x!tinycl.fixed<16, 8>>) -> tensor<4x8x!tinycl.fixed<35, 20>> loc("fc")
// CHECK-NEXT: tinycl.requant %[[DXACC]] nearest-even saturate : (tensor<4x8x!tinycl.fixed<35, 20>>) -> tensor<4x8x!tinycl.fixed<16, 12>> loc("fc")
// CHECK:      %[[X:.*]] = tinycl.quantize %h nearest-even saturate : (tensor<4x8xf32>) -> tensor<4x8x!tinycl.fixed<16, 8>> loc("fc")
// CHECK-NEXT: %[[DWACC:.*]] = tinycl.mac weight-gradient %{{.*}}, %[[X]] : (tensor<4x3x!tinycl.fixed<16, 12>>, tensor<4x8x!tinycl.fixed<16, 8>>) -> tensor<3x8x!tinycl.fixed<36, 20>> loc("fc")
// CHECK-NEXT: %[[DWQ:.*]] = tinycl.requant %[[DWACC]] nearest-even saturate : (tensor<3x8x!tinycl.fixed<36, 20>>) -> tensor<3x8x!tinycl.fixed<16, 12>> loc("fc")
// CHECK-NEXT: %[[DW:.*]] = tinycl.dequantize %[[DWQ]]
// CHECK:      grad.sgd %w, %[[DW]] {lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64}

// The backward ops with no fixed-point lowering are named once per kind.
// REMARK-DAG: remark: lower-to-tinycl: <unknown>: 2 x grad.sgd: no fixed-point lowering yet, stays on the host (float)
// REMARK-DAG: remark: lower-to-tinycl: <unknown>: 1 x grad.cross_entropy_backward: no fixed-point lowering yet, stays on the host (float)

// GRAD10: grad_frac_bits = 10 : i64
// GRAD10: tinycl.mac input-gradient {{.*}} : (tensor<4x3x!tinycl.fixed<16, 10>>, tensor<3x8x!tinycl.fixed<16, 8>>) -> tensor<4x8x!tinycl.fixed<35, 18>>

// BADGRAD: attnc-opt: error: lower-to-tinycl: grad-frac-bits must be -1 (the default) or in [0, total-bits) = [0, 16), got 16
