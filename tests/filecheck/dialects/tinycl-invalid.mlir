// RUN: attnc-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s
// RUN: not attnc-opt %s --split-input-file 2>&1 | filecheck %s --check-prefix=FIRST

// One case per diagnostic of the tinycl dialect (dialects/tinycl.py): the !tinycl.fixed format, the rounding
// ops (quantize, requant), tinycl.mac in each mode, softmax, layer_norm and lut. The first case must stay
// first: the FIRST run checks attnc-opt's own error path on it (one line, no traceback).
func.func @frac_too_big(%a: tensor<2x!tinycl.fixed<8, 8>>) {
  func.return
}
// CHECK: !tinycl.fixed: fractional bits must be in [0, total bits) = [0, 8), got 8
// FIRST: attnc-opt: error: {{.*}}fractional bits must be in [0, total bits) = [0, 8), got 8
// FIRST-NOT: Traceback

// -----
func.func @total_too_small(%a: tensor<2x!tinycl.fixed<1, 0>>) {
  func.return
}
// CHECK: !tinycl.fixed: total bits must be in [2, 64], got 1

// -----
func.func @unknown_rounding(%x: tensor<2xf32>) {
  %q = tinycl.quantize %x round-up saturate : (tensor<2xf32>) -> tensor<2x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: unknown rounding mode 'round-up': expected one of nearest-even, truncate, stochastic
// CHECK: | Operation does not verify: unknown rounding mode 'round-up': expected one of nearest-even, truncate, stochastic

// -----
func.func @unknown_overflow(%x: tensor<2xf32>) {
  %q = tinycl.quantize %x truncate clamp : (tensor<2xf32>) -> tensor<2x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: unknown overflow mode 'clamp': expected one of saturate, wrap
// CHECK: | Operation does not verify: unknown overflow mode 'clamp': expected one of saturate, wrap

// -----
func.func @quantize_integer(%x: tensor<2xi32>) {
  %q = tinycl.quantize %x truncate wrap : (tensor<2xi32>) -> tensor<2x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: tinycl.quantize takes a float tensor, got i32
// CHECK: | Operation does not verify: tinycl.quantize takes a float tensor, got i32

// -----
func.func @requant_float_result(%x: tensor<2x!tinycl.fixed<32, 16>>) {
  %q = tinycl.requant %x truncate wrap : (tensor<2x!tinycl.fixed<32, 16>>) -> tensor<2xf32>
  func.return
}
// CHECK: the result must be a tensor of !tinycl.fixed, got f32
// CHECK: | Operation does not verify: the result must be a tensor of !tinycl.fixed, got f32

// -----
func.func @requant_shape(%x: tensor<2x!tinycl.fixed<32, 16>>) {
  %q = tinycl.requant %x truncate wrap : (tensor<2x!tinycl.fixed<32, 16>>) -> tensor<3x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: result shape 3 must equal the input's 2
// CHECK: | Operation does not verify: result shape 3 must equal the input's 2

// -----
func.func @mac_mode(%a: tensor<5x8x!tinycl.fixed<8, 4>>, %b: tensor<3x8x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac backward %a, %b : (tensor<5x8x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<5x3x!tinycl.fixed<20, 8>>
  func.return
}
// CHECK: unknown MAC mode 'backward': expected one of forward, input-gradient, weight-gradient, update
// CHECK: | Operation does not verify: unknown MAC mode 'backward': expected one of forward, input-gradient, weight-gradient, update

// -----
func.func @mac_depth(%a: tensor<5x8x!tinycl.fixed<8, 4>>, %b: tensor<3x7x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac forward %a, %b : (tensor<5x8x!tinycl.fixed<8, 4>>, tensor<3x7x!tinycl.fixed<8, 4>>) -> tensor<5x3x!tinycl.fixed<20, 8>>
  func.return
}
// CHECK: forward contracts the last dims: lhs 5x8 and rhs 3x7 differ
// CHECK: | Operation does not verify: forward contracts the last dims: lhs 5x8 and rhs 3x7 differ

// -----
func.func @mac_accumulator_frac(%a: tensor<5x8x!tinycl.fixed<8, 4>>, %b: tensor<3x8x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac forward %a, %b : (tensor<5x8x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<5x3x!tinycl.fixed<20, 4>>
  func.return
}
// CHECK: the accumulator of forward has 8 fractional bits (lhs 4, rhs 4), got 4
// CHECK: | Operation does not verify: the accumulator of forward has 8 fractional bits (lhs 4, rhs 4), got 4

// -----
func.func @mac_narrow_accumulator(%a: tensor<5x8x!tinycl.fixed<8, 4>>, %b: tensor<3x8x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac update %a, %a : (tensor<5x8x!tinycl.fixed<8, 4>>, tensor<5x8x!tinycl.fixed<8, 4>>) -> tensor<5x8x!tinycl.fixed<6, 4>>
  func.return
}
// CHECK: the accumulator (6 bits) is narrower than an operand
// CHECK: | Operation does not verify: the accumulator (6 bits) is narrower than an operand

// -----
func.func @mac_float_operand(%a: tensor<5x8xf32>, %b: tensor<3x8x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac forward %a, %b : (tensor<5x8xf32>, tensor<3x8x!tinycl.fixed<8, 4>>) -> tensor<5x3x!tinycl.fixed<20, 8>>
  func.return
}
// CHECK: lhs must be a tensor of !tinycl.fixed, got f32
// CHECK: | Operation does not verify: lhs must be a tensor of !tinycl.fixed, got f32

// -----
func.func @mac_bias_mode(%a: tensor<5x3x!tinycl.fixed<8, 4>>, %b: tensor<3x8x!tinycl.fixed<8, 4>>, %c: tensor<8x!tinycl.fixed<20, 8>>) {
  %y = tinycl.mac input-gradient %a, %b, %c : (tensor<5x3x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>, tensor<8x!tinycl.fixed<20, 8>>) -> tensor<5x8x!tinycl.fixed<20, 8>>
  func.return
}
// CHECK: only forward takes a bias, not input-gradient
// CHECK: | Operation does not verify: only forward takes a bias, not input-gradient

// -----
func.func @mac_bias_format(%a: tensor<5x8x!tinycl.fixed<8, 4>>, %b: tensor<3x8x!tinycl.fixed<8, 4>>, %c: tensor<3x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac forward %a, %b, %c : (tensor<5x8x!tinycl.fixed<8, 4>>, tensor<3x8x!tinycl.fixed<8, 4>>, tensor<3x!tinycl.fixed<8, 4>>) -> tensor<5x3x!tinycl.fixed<20, 8>>
  func.return
}
// CHECK: the bias must be in the accumulator format !tinycl.fixed<20, 8>, got !tinycl.fixed<8, 4>
// CHECK: | Operation does not verify: the bias must be in the accumulator format !tinycl.fixed<20, 8>, got !tinycl.fixed<8, 4>

// -----
func.func @mac_update_shapes(%a: tensor<3x8x!tinycl.fixed<8, 4>>, %b: tensor<3x7x!tinycl.fixed<8, 4>>) {
  %y = tinycl.mac update %a, %b : (tensor<3x8x!tinycl.fixed<8, 4>>, tensor<3x7x!tinycl.fixed<8, 4>>) -> tensor<3x8x!tinycl.fixed<9, 4>>
  func.return
}
// CHECK: update takes operands of one shape, got 3x8 and 3x7
// CHECK: | Operation does not verify: update takes operands of one shape, got 3x8 and 3x7

// -----
func.func @softmax_no_one(%s: tensor<2x3x!tinycl.fixed<8, 7>>) {
  %p = tinycl.softmax %s {scale = 1.0 : f64, causal = false} : (tensor<2x3x!tinycl.fixed<8, 7>>) -> tensor<2x3x!tinycl.fixed<8, 7>>
  func.return
}
// CHECK: softmax needs 1.0 representable: frac bits <= total bits - 2, got !tinycl.fixed<8, 7>
// CHECK: | Operation does not verify: softmax needs 1.0 representable: frac bits <= total bits - 2, got !tinycl.fixed<8, 7>

// -----
func.func @softmax_scale(%s: tensor<2x3x!tinycl.fixed<8, 4>>) {
  %p = tinycl.softmax %s {scale = 0.0 : f64, causal = false} : (tensor<2x3x!tinycl.fixed<8, 4>>) -> tensor<2x3x!tinycl.fixed<8, 4>>
  func.return
}
// CHECK: scale must be positive, got 0.0
// CHECK: | Operation does not verify: scale must be positive, got 0.0

// -----
func.func @layer_norm_gamma(%x: tensor<2x3x!tinycl.fixed<16, 8>>, %g: tensor<3xf32>) {
  %n = tinycl.layer_norm %x, %g, %g {eps = 1.0e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<2x3x!tinycl.fixed<16, 8>>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: gamma must be 3 of !tinycl.fixed, got tensor<3xf32>
// CHECK: | Operation does not verify: gamma must be 3 of !tinycl.fixed, got tensor<3xf32>

// -----
func.func @layer_norm_result_shape(%x: tensor<2x3x!tinycl.fixed<16, 8>>, %g: tensor<3x!tinycl.fixed<16, 14>>) {
  %n = tinycl.layer_norm %x, %g, %g {eps = 1.0e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<2x3x!tinycl.fixed<16, 8>>, tensor<3x!tinycl.fixed<16, 14>>, tensor<3x!tinycl.fixed<16, 14>>) -> tensor<3x2x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: tinycl.layer_norm keeps the input's shape 2x3, got tensor<3x2x!tinycl.fixed<16, 12>>
// CHECK: | Operation does not verify: tinycl.layer_norm keeps the input's shape 2x3, got tensor<3x2x!tinycl.fixed<16, 12>>

// -----
func.func @calibrated_max_outside_format(%x: tensor<2xf32>) {
  %q = tinycl.quantize %x nearest-even saturate {calibrated_max = 9.5 : f64} : (tensor<2xf32>) -> tensor<2x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: the result format !tinycl.fixed<16, 12> holds at most 7.999755859375, below the calibrated_max 9.5
// CHECK: | Operation does not verify: the result format !tinycl.fixed<16, 12> holds at most 7.999755859375, below the calibrated_max 9.5

// -----
func.func @calibrated_max_negative(%x: tensor<2xf32>) {
  %q = tinycl.quantize %x nearest-even saturate {calibrated_max = -1.0 : f64} : (tensor<2xf32>) -> tensor<2x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: calibrated_max must be a finite float >= 0, got -1.000000e+00 : f64
// CHECK: | Operation does not verify: calibrated_max must be a finite float >= 0, got -1.000000e+00 : f64

// -----
func.func @lut_function(%x: tensor<2x!tinycl.fixed<16, 8>>) {
  %y = tinycl.lut %x tanh : (tensor<2x!tinycl.fixed<16, 8>>) -> tensor<2x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: unknown table function 'tanh': expected one of gelu, relu
// CHECK: | Operation does not verify: unknown table function 'tanh': expected one of gelu, relu

// -----
func.func @lut_type(%x: tensor<2x!tinycl.fixed<16, 8>>) {
  %y = tinycl.lut %x gelu : (tensor<2x!tinycl.fixed<16, 8>>) -> tensor<2xf32>
  func.return
}
// CHECK: the result must be a tensor of !tinycl.fixed, got f32
// CHECK: | Operation does not verify: the result must be a tensor of !tinycl.fixed, got f32

// -----
func.func @lut_shape(%x: tensor<2x!tinycl.fixed<16, 8>>) {
  %y = tinycl.lut %x gelu : (tensor<2x!tinycl.fixed<16, 8>>) -> tensor<3x!tinycl.fixed<16, 4>>
  func.return
}
// CHECK: tinycl.lut keeps the input's shape 2, got tensor<3x!tinycl.fixed<16, 4>>
// CHECK: | Operation does not verify: tinycl.lut keeps the input's shape 2, got tensor<3x!tinycl.fixed<16, 4>>

// -----
func.func @softmax_mask_type(%s: tensor<2x3x!tinycl.fixed<8, 4>>, %m: tensor<2x3xf32>) {
  %p = tinycl.softmax %s mask %m {scale = 1.0 : f64, causal = false} : (tensor<2x3x!tinycl.fixed<8, 4>>, tensor<2x3xf32>) -> tensor<2x3x!tinycl.fixed<8, 4>>
  func.return
}
// CHECK: the mask must be i1 (true keeps a key), got f32
// CHECK: | Operation does not verify: the mask must be i1 (true keeps a key), got f32

// -----
func.func @softmax_mask_shape(%s: tensor<2x3x!tinycl.fixed<8, 4>>, %m: tensor<2x2xi1>) {
  %p = tinycl.softmax %s mask %m {scale = 1.0 : f64, causal = false} : (tensor<2x3x!tinycl.fixed<8, 4>>, tensor<2x2xi1>) -> tensor<2x3x!tinycl.fixed<8, 4>>
  func.return
}
// CHECK: the mask 2x2 does not broadcast to the scores 2x3
// CHECK: | Operation does not verify: the mask 2x2 does not broadcast to the scores 2x3

// -----
func.func @l2_normalize_no_one(%x: tensor<2x3x!tinycl.fixed<8, 7>>) {
  %y = tinycl.l2_normalize %x : (tensor<2x3x!tinycl.fixed<8, 7>>) -> tensor<2x3x!tinycl.fixed<8, 7>>
  func.return
}
// CHECK: a unit vector needs 1.0 representable: frac bits <= total bits - 2, got !tinycl.fixed<8, 7>
// CHECK: | Operation does not verify: a unit vector needs 1.0 representable: frac bits <= total bits - 2, got !tinycl.fixed<8, 7>

// -----
func.func @head_scale_m(%x: tensor<1x2x5x8x!tinycl.fixed<16, 8>>, %m: tensor<3xf32>) {
  %y = tinycl.head_scale %x, %m {length = 5 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<1x2x5x8x!tinycl.fixed<16, 8>>, tensor<3xf32>) -> tensor<1x2x5x8x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: m must be a float tensor with one value per head (2), got tensor<3xf32>
// CHECK: | Operation does not verify: m must be a float tensor with one value per head (2), got tensor<3xf32>

// -----
func.func @add_broadcast(%x: tensor<4x3x!tinycl.fixed<16, 8>>, %b: tensor<2x!tinycl.fixed<16, 8>>) {
  %a = tinycl.add %x, %b {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<2x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: operands 4x3 and 2 do not broadcast to the result 4x3

// -----
func.func @reduce_shape(%x: tensor<4x3x!tinycl.fixed<16, 8>>) {
  %s = tinycl.reduce_sum %x {dims = array<i64: 0>, keepdim = true, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<3x!tinycl.fixed<16, 8>>
  func.return
}
// CHECK: the sum over [0] is 1x3, got 3

// -----
func.func @activation_function(%x: tensor<4x3x!tinycl.fixed<16, 8>>) {
  %d = tinycl.activation_backward %x, %x {function = "tanh", rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: unknown table function 'tanh': expected one of gelu, relu

// -----
func.func @cross_entropy_labels(%x: tensor<4x3x!tinycl.fixed<16, 8>>, %labels: tensor<3xi64>) {
  %d = tinycl.cross_entropy_backward %x, %labels {scale = 1 : i64, divisor = 4 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<3xi64>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: logits 4x3, labels 3 and the result 4x3 do not match

// -----
func.func @layer_norm_backward_gamma(%x: tensor<4x3x!tinycl.fixed<16, 8>>, %g: tensor<4x!tinycl.fixed<16, 8>>) {
  %d = tinycl.layer_norm_backward %x, %x, %g {eps = 1.0e-05 : f64, rounding = "nearest-even", overflow = "saturate"} : (tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x3x!tinycl.fixed<16, 8>>, tensor<4x!tinycl.fixed<16, 8>>) -> tensor<4x3x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: gamma must be 3, got 4

// -----
func.func @l2_normalize_backward_shape(%x: tensor<4x8x!tinycl.fixed<16, 8>>, %dn: tensor<4x7x!tinycl.fixed<16, 12>>) {
  %d = tinycl.l2_normalize_backward %x, %dn {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x8x!tinycl.fixed<16, 8>>, tensor<4x7x!tinycl.fixed<16, 12>>) -> tensor<4x8x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: the input, its gradient and the result must have one shape (rank >= 1)

// -----
func.func @l2_normalize_backward_float(%x: tensor<4x8xf32>, %dn: tensor<4x8x!tinycl.fixed<16, 12>>) {
  %d = tinycl.l2_normalize_backward %x, %dn {rounding = "nearest-even", overflow = "saturate"} : (tensor<4x8xf32>, tensor<4x8x!tinycl.fixed<16, 12>>) -> tensor<4x8x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: the input must be a tensor of !tinycl.fixed, got f32

// -----
func.func @head_scale_backward_heads(%a: tensor<2x4x5x8x!tinycl.fixed<16, 12>>, %m: tensor<3xf32>) {
  %d = tinycl.head_scale_backward %a, %a, %m {length = 5 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<2x4x5x8x!tinycl.fixed<16, 12>>, tensor<2x4x5x8x!tinycl.fixed<16, 12>>, tensor<3xf32>) -> tensor<4x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: m must be a float tensor with one value per head (4), got tensor<3xf32>

// -----
func.func @head_scale_backward_result(%a: tensor<2x4x5x8x!tinycl.fixed<16, 12>>, %m: tensor<4xf32>) {
  %d = tinycl.head_scale_backward %a, %a, %m {length = 5 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<2x4x5x8x!tinycl.fixed<16, 12>>, tensor<2x4x5x8x!tinycl.fixed<16, 12>>, tensor<4xf32>) -> tensor<2x4x!tinycl.fixed<16, 12>>
  func.return
}
// CHECK: the result holds one value per head (4), got 2x4
