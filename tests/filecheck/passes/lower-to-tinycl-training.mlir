// RUN: attnc-opt %s -p 'training-step{lr=0.1},lower-to-tinycl' --print-debuginfo 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'training-step{lr=0.1},lower-to-tinycl{grad-frac-bits=10}' | filecheck --check-prefix=GRAD10 %s
// RUN: not attnc-opt %s -p 'training-step,lower-to-tinycl{grad-frac-bits=16}' 2>&1 | filecheck --check-prefix=BADGRAD %s
// RUN: not attnc-opt %s -p 'training-step{lr=0.05 momentum=0.9},lower-to-tinycl{total-bits=12 frac-bits=6}' 2>&1 | filecheck --check-prefix=NOUPDATE %s
// RUN: attnc-opt %s -p 'training-step{lr=0.05 momentum=0.9},lower-to-tinycl{total-bits=12 frac-bits=6 loss-scale=4}' | filecheck --check-prefix=LANDS %s
// RUN: attnc-opt %s -p 'training-step{lr=0.05 momentum=0.9},lower-to-tinycl{total-bits=12 frac-bits=6 weight-frac-bits=10}' | filecheck --check-prefix=LANDS %s
// RUN: attnc-opt %s -p 'training-step{lr=0.05 momentum=0.9},lower-to-tinycl{total-bits=12 frac-bits=6 rounding=stochastic}' | filecheck --check-prefix=LANDS %s

// A whole training step on the array: the forward linear is a tinycl.mac forward; its input gradient (dy W) a
// tinycl.mac input-gradient and its weight gradient (dyᵀ x) a tinycl.mac weight-gradient, the gradient operand
// in the gradient format (16/12 by default at 16/8: four more fractional bits), the other operand in the data
// (weight) format, each with an accumulator wide enough not to overflow, requantised to the gradient format;
// the loss gradient, the bias reduction and the SGD step are fixed-point units too.
// The tinycl.config of a training step records the gradient format.
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %s = nn.param @shift : tensor<8xf32> loc("shift")
  %h = nn.add %x, %s : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("shift")
  %w = nn.param @fc.weight : tensor<3x8xf32> loc("fc")
  %y = nn.linear %h, %w : (tensor<4x8xf32>, tensor<3x8xf32>) -> tensor<4x3xf32> loc("fc")
  func.return %y : tensor<4x3xf32>
}
// CHECK:      builtin.module attributes {attnc.updates = ["shift", "fc.weight"], tinycl.config = {{.*}}grad_frac_bits = 12 : i64}}
// The forward add is a tinycl.add (the parameter in the weight format).
// CHECK:      %[[H:.*]] = tinycl.add %{{.*}}, %{{.*}} {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x8x!tinycl.fixed<16, 8>>, tensor<8x!tinycl.fixed<16, 8>>) -> tensor<4x8x!tinycl.fixed<16, 8>> loc("shift")
// CHECK:      %[[Y:.*]] = tinycl.mac forward %[[H]], %y_w_q : (tensor<4x8x!tinycl.fixed<16, 8>>, tensor<3x8x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<37, 16>> loc("fc")
// CHECK:      %[[YQ:.*]] = tinycl.requant %[[Y]]
// Only the reported loss stays in float; its gradient is the fixed-point unit (mean over 4 labels, times the loss scale 16).
// CHECK:      grad.cross_entropy %y, %labels
// CHECK-NEXT: %[[G:.*]] = tinycl.cross_entropy_backward %[[YQ]], %labels {scale = 16 : i64, divisor = 4 : i64, rounding = "nearest-even", overflow = "saturate", phase = "input-gradient"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4xi64>) -> tensor<4x3x!tinycl.fixed<16, 12>>
// CHECK:      %[[W:.*]] = tinycl.quantize %w nearest-even saturate : (tensor<3x8xf32>) -> tensor<3x8x!tinycl.fixed<16, 8>> loc("fc")
// CHECK-NEXT: %[[DXACC:.*]] = tinycl.mac input-gradient %[[G]], %[[W]] : (tensor<4x3x!tinycl.fixed<16, 12>>, tensor<3x8x!tinycl.fixed<16, 8>>) -> tensor<4x8x!tinycl.fixed<35, 20>> loc("fc")
// CHECK-NEXT: %[[DX:.*]] = tinycl.requant %[[DXACC]] nearest-even saturate : (tensor<4x8x!tinycl.fixed<35, 20>>) -> tensor<4x8x!tinycl.fixed<16, 12>> loc("fc")
// CHECK:      %[[DWACC:.*]] = tinycl.mac weight-gradient %{{.*}}, %[[H]] : (tensor<4x3x!tinycl.fixed<16, 12>>, tensor<4x8x!tinycl.fixed<16, 8>>) -> tensor<3x8x!tinycl.fixed<36, 20>> loc("fc")
// CHECK-NEXT: %[[DW:.*]] = tinycl.requant %[[DWACC]] nearest-even saturate : (tensor<3x8x!tinycl.fixed<36, 20>>) -> tensor<3x8x!tinycl.fixed<16, 12>> loc("fc")
// The broadcast's backward: the exact sum over the batch.
// CHECK:      tinycl.reduce_sum %[[DX]] {dims = array<i64: 0>, keepdim = true, rounding = "nearest-even", overflow = "saturate", phase = "input-gradient"} : (tensor<4x8x!tinycl.fixed<16, 12>>) -> tensor<1x8x!tinycl.fixed<16, 12>>
// SGD on the update mode: the product by lr / 16 exact, the difference in a wide accumulator, requantised to the weight format.
// CHECK:      %[[LR:.*]] = tinycl.quantize %{{.*}} nearest-even saturate {phase = "update"} : (tensor<f32>) -> tensor<!tinycl.fixed<23, 22>>
// CHECK-NEXT: %[[STEP:.*]] = tinycl.mul %{{.*}}, %[[LR]] {{.*}}phase = "update"} : (tensor<8x!tinycl.fixed<16, 12>>, tensor<!tinycl.fixed<23, 22>>) -> tensor<8x!tinycl.fixed<39, 34>>
// CHECK-NEXT: %[[ACC:.*]] = tinycl.mac update %{{.*}}, %[[STEP]] {phase = "update"} : (tensor<8x!tinycl.fixed<16, 8>>, tensor<8x!tinycl.fixed<39, 34>>) -> tensor<8x!tinycl.fixed<43, 34>>
// CHECK-NEXT: tinycl.requant %[[ACC]] nearest-even saturate {phase = "update"} : (tensor<8x!tinycl.fixed<43, 34>>) -> tensor<8x!tinycl.fixed<16, 8>>
// CHECK:      tinycl.mul %[[DW]], %{{.*}} {{.*}}phase = "update"} : (tensor<3x8x!tinycl.fixed<16, 12>>, tensor<!tinycl.fixed<23, 22>>) -> tensor<3x8x!tinycl.fixed<39, 34>>
// CHECK-NOT:  grad.sgd

// The one op left on the host is named.
// REMARK: remark: lower-to-tinycl: <unknown>: grad.cross_entropy: the reported loss value stays on the host (float); no update depends on it
// REMARK-NOT: no fixed-point lowering

// GRAD10: grad_frac_bits = 10 : i64
// GRAD10: tinycl.mac input-gradient {{.*}} : (tensor<4x3x!tinycl.fixed<16, 10>>, tensor<3x8x!tinycl.fixed<16, 8>>) -> tensor<4x8x!tinycl.fixed<35, 18>>

// BADGRAD: attnc-opt: error: lower-to-tinycl: grad-frac-bits must be -1 (the default) or in [0, total-bits) = [0, 16), got 16

// At 12/6 with the default loss scale, every update (0.05 / 16 x the velocity, whose 12/10 format stops below 2)
// is under half a weight step and rounds away: the step is refused. A smaller loss scale, finer weights or
// stochastic rounding let updates land.
// NOUPDATE: attnc-opt: error: lower-to-tinycl: no SGD update can change a weight: the largest update, lr / loss-scale x the largest velocity (0.05 / 16 x 1.99902 = 0.00625), is below half a weight step (2^-7 = 0.00781) and rounds away; raise weight-frac-bits (now 6), lower loss-scale, raise the learning rate, or use rounding=stochastic
// LANDS: tinycl.mac update
