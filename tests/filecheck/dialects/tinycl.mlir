// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s --print-op-generic | attnc-opt | filecheck %s

// Round trip of the tinycl dialect in its custom form (parse, print, re-parse, print again; identical) and
// through the generic form: every op, every MAC mode, the rounding and overflow modes as bare words.

// CHECK-LABEL: func.func @linear
// CHECK:      %xq = tinycl.quantize %x nearest-even saturate : (tensor<2x4xf32>) -> tensor<2x4x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %wq = tinycl.quantize %w truncate wrap : (tensor<3x4xf32>) -> tensor<3x4x!tinycl.fixed<16, 12>>
// CHECK-NEXT: %bq = tinycl.quantize %b stochastic saturate : (tensor<3xf32>) -> tensor<3x!tinycl.fixed<36, 20>>
// CHECK-NEXT: %acc = tinycl.mac forward %xq, %wq, %bq : (tensor<2x4x!tinycl.fixed<16, 8>>, tensor<3x4x!tinycl.fixed<16, 12>>, tensor<3x!tinycl.fixed<36, 20>>) -> tensor<2x3x!tinycl.fixed<36, 20>>
// CHECK-NEXT: %y = tinycl.requant %acc nearest-even wrap : (tensor<2x3x!tinycl.fixed<36, 20>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %g = tinycl.lut %y gelu : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %r = tinycl.lut %g relu : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %gq = tinycl.quantize %gamma nearest-even saturate : (tensor<3xf32>) -> tensor<3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %n = tinycl.layer_norm %r, %gq, %gq {eps = 1.000000e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<2x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %p = tinycl.softmax %n {scale = 5.000000e-01 : f64, causal = true} : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %f = tinycl.dequantize %p : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3xf32>
func.func @linear(%x: tensor<2x4xf32>, %w: tensor<3x4xf32>, %b: tensor<3xf32>, %gamma: tensor<3xf32>) -> tensor<2x3xf32> {
  %xq = tinycl.quantize %x nearest-even saturate : (tensor<2x4xf32>) -> tensor<2x4x!tinycl.fixed<16, 8>>
  %wq = tinycl.quantize %w truncate wrap : (tensor<3x4xf32>) -> tensor<3x4x!tinycl.fixed<16, 12>>
  %bq = tinycl.quantize %b stochastic saturate : (tensor<3xf32>) -> tensor<3x!tinycl.fixed<36, 20>>
  %acc = tinycl.mac forward %xq, %wq, %bq : (tensor<2x4x!tinycl.fixed<16, 8>>, tensor<3x4x!tinycl.fixed<16, 12>>, tensor<3x!tinycl.fixed<36, 20>>) -> tensor<2x3x!tinycl.fixed<36, 20>>
  %y = tinycl.requant %acc nearest-even wrap : (tensor<2x3x!tinycl.fixed<36, 20>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
  %g = tinycl.lut %y gelu : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
  %r = tinycl.lut %g relu : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
  %gq = tinycl.quantize %gamma nearest-even saturate : (tensor<3xf32>) -> tensor<3x!tinycl.fixed<16, 8>>
  %n = tinycl.layer_norm %r, %gq, %gq {eps = 1.0e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<2x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
  %p = tinycl.softmax %n {scale = 0.5 : f64, causal = true} : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3x!tinycl.fixed<16, 8>>
  %f = tinycl.dequantize %p : (tensor<2x3x!tinycl.fixed<16, 8>>) -> tensor<2x3xf32>
  func.return %f : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @modes
// CHECK:      %s = tinycl.mac forward %q, %k : (tensor<2x4x5x8x!tinycl.fixed<8, 4>>, tensor<2x4x6x8x!tinycl.fixed<8, 4>>) -> tensor<2x4x5x6x!tinycl.fixed<20, 8>>
// CHECK-NEXT: %dx = tinycl.mac input-gradient %dy, %w : (tensor<5x3x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<5x8x!tinycl.fixed<20, 8>>
// CHECK-NEXT: %dw = tinycl.mac weight-gradient %dy, %x : (tensor<5x3x!tinycl.fixed<8, 4>>, tensor<5x8x!tinycl.fixed<8, 4>>) -> tensor<3x8x!tinycl.fixed<20, 8>>
// CHECK-NEXT: %keep = "test.op"() : () -> tensor<5x6xi1>
// CHECK-NEXT: %sq = tinycl.requant %s nearest-even saturate
// CHECK-NEXT: %p = tinycl.softmax %sq mask %keep {scale = 1.000000e+00 : f64, causal = false} : (tensor<2x4x5x6x!tinycl.fixed<8, 4>>, tensor<5x6xi1>) -> tensor<2x4x5x6x!tinycl.fixed<8, 4>>
// CHECK-NEXT: %qn = tinycl.l2_normalize %q : (tensor<2x4x5x8x!tinycl.fixed<8, 4>>) -> tensor<2x4x5x8x!tinycl.fixed<8, 4>>
// CHECK-NEXT: %m = "test.op"() : () -> tensor<4xf32>
// CHECK-NEXT: %hs = tinycl.head_scale %qn, %m {length = 6 : i64, rounding = "truncate", overflow = "wrap"} : (tensor<2x4x5x8x!tinycl.fixed<8, 4>>, tensor<4xf32>) -> tensor<2x4x5x8x!tinycl.fixed<8, 4>>
// CHECK-NEXT: %w2 = tinycl.mac update %w, %w : (tensor<3x8x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<3x8x!tinycl.fixed<9, 4>>
func.func @modes(%q: tensor<2x4x5x8x!tinycl.fixed<8, 4>>, %k: tensor<2x4x6x8x!tinycl.fixed<8, 4>>, %dy: tensor<5x3x!tinycl.fixed<8, 4>>, %w: tensor<3x8x!tinycl.fixed<8, 4>>, %x: tensor<5x8x!tinycl.fixed<8, 4>>) {
  %s = tinycl.mac forward %q, %k : (tensor<2x4x5x8x!tinycl.fixed<8, 4>>, tensor<2x4x6x8x!tinycl.fixed<8, 4>>) -> tensor<2x4x5x6x!tinycl.fixed<20, 8>>
  %dx = tinycl.mac input-gradient %dy, %w : (tensor<5x3x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<5x8x!tinycl.fixed<20, 8>>
  %dw = tinycl.mac weight-gradient %dy, %x : (tensor<5x3x!tinycl.fixed<8, 4>>, tensor<5x8x!tinycl.fixed<8, 4>>) -> tensor<3x8x!tinycl.fixed<20, 8>>
  %keep = "test.op"() : () -> tensor<5x6xi1>
  %sq = tinycl.requant %s nearest-even saturate : (tensor<2x4x5x6x!tinycl.fixed<20, 8>>) -> tensor<2x4x5x6x!tinycl.fixed<8, 4>>
  %p = tinycl.softmax %sq mask %keep {scale = 1.0 : f64, causal = false} : (tensor<2x4x5x6x!tinycl.fixed<8, 4>>, tensor<5x6xi1>) -> tensor<2x4x5x6x!tinycl.fixed<8, 4>>
  %qn = tinycl.l2_normalize %q : (tensor<2x4x5x8x!tinycl.fixed<8, 4>>) -> tensor<2x4x5x8x!tinycl.fixed<8, 4>>
  %m = "test.op"() : () -> tensor<4xf32>
  %hs = tinycl.head_scale %qn, %m {length = 6 : i64, rounding = "truncate", overflow = "wrap"} : (tensor<2x4x5x8x!tinycl.fixed<8, 4>>, tensor<4xf32>) -> tensor<2x4x5x8x!tinycl.fixed<8, 4>>
  %w2 = tinycl.mac update %w, %w : (tensor<3x8x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<3x8x!tinycl.fixed<9, 4>>
  func.return
}

// The units of the training step: add, product, sum, the backward units; each with its rounding and overflow.
// CHECK-LABEL: func.func @training_units
// CHECK:      %a = tinycl.add %x, %b {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 12>>) -> tensor<4x3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %m = tinycl.mul %x, %b {rounding = "truncate", overflow = "wrap"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 12>>) -> tensor<4x3x!tinycl.fixed<32, 20>>
// CHECK-NEXT: %s = tinycl.reduce_sum %x {dims = array<i64: 0>, keepdim = false, rounding = "stochastic", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<3x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %ds = tinycl.softmax_backward %x, %x {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
// CHECK-NEXT: %dn = tinycl.layer_norm_backward %x, %x, %g {eps = 1.000000e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
// CHECK-NEXT: %da = tinycl.activation_backward %x, %x {function = "gelu", rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
// CHECK-NEXT: %dl = tinycl.cross_entropy_backward %x, %labels {scale = 16 : i64, divisor = 4 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4xi64>) -> tensor<4x3x!tinycl.fixed<16, 12>>
func.func @training_units(%x: tensor<4x3x!tinycl.fixed<16, 8>>, %b: tensor<3x!tinycl.fixed<16, 12>>, %g: tensor<3x!tinycl.fixed<16, 8>>, %labels: tensor<4xi64>) {
  %a = tinycl.add %x, %b {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 12>>) -> tensor<4x3x!tinycl.fixed<16, 8>>
  %m = tinycl.mul %x, %b {rounding = "truncate", overflow = "wrap"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 12>>) -> tensor<4x3x!tinycl.fixed<32, 20>>
  %s = tinycl.reduce_sum %x {dims = array<i64: 0>, keepdim = false, rounding = "stochastic", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<3x!tinycl.fixed<16, 8>>
  %ds = tinycl.softmax_backward %x, %x {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  %dn = tinycl.layer_norm_backward %x, %x, %g {eps = 1.0e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  %da = tinycl.activation_backward %x, %x {function = "gelu", rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  %dl = tinycl.cross_entropy_backward %x, %labels {scale = 16 : i64, divisor = 4 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4xi64>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  func.return
}

// The backward units of cosine attention: the normalisation's input gradient and the gradient of the per-head m.
// CHECK-LABEL: func.func @cosine_units
// CHECK:      %dx = tinycl.l2_normalize_backward %x, %dn {rounding = "truncate", overflow = "wrap"} : (tensor<2x4x5x8x!tinycl.fixed<16, 8>>, tensor<2x4x5x8x!tinycl.fixed<16, 12>>) -> tensor<2x4x5x8x!tinycl.fixed<16, 12>>
// CHECK-NEXT: %dm = tinycl.head_scale_backward %dn, %x, %m {length = 5 : i64, rounding = "stochastic", overflow = "saturate"} : (tensor<2x4x5x8x!tinycl.fixed<16, 12>>, tensor<2x4x5x8x!tinycl.fixed<16, 8>>, tensor<4xf32>) -> tensor<4x!tinycl.fixed<16, 12>>
func.func @cosine_units(%x: tensor<2x4x5x8x!tinycl.fixed<16, 8>>, %dn: tensor<2x4x5x8x!tinycl.fixed<16, 12>>, %m: tensor<4xf32>) {
  %dx = tinycl.l2_normalize_backward %x, %dn {rounding = "truncate", overflow = "wrap"} : (tensor<2x4x5x8x!tinycl.fixed<16, 8>>, tensor<2x4x5x8x!tinycl.fixed<16, 12>>) -> tensor<2x4x5x8x!tinycl.fixed<16, 12>>
  %dm = tinycl.head_scale_backward %dn, %x, %m {length = 5 : i64, rounding = "stochastic", overflow = "saturate"} : (tensor<2x4x5x8x!tinycl.fixed<16, 12>>, tensor<2x4x5x8x!tinycl.fixed<16, 8>>, tensor<4xf32>) -> tensor<4x!tinycl.fixed<16, 12>>
  func.return
}
