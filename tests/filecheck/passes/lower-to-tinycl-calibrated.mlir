// RUN: attnc-opt %s -p 'lower-to-tinycl{formats=calibrated}' --split-input-file 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'lower-to-tinycl{formats=calibrated total-bits=8 headroom=2.0}' --split-input-file | filecheck --check-prefix=EIGHT %s
// RUN: attnc-opt %s -p 'lower-to-tinycl' --split-input-file | filecheck --check-prefix=UNIFORM %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{formats=fancy}' 2>&1 | filecheck --check-prefix=BADFORMATS %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{formats=calibrated headroom=0.5}' 2>&1 | filecheck --check-prefix=BADHEADROOM %s

// formats=calibrated: each quantisation point gets the most fractional bits that hold its recorded max |x|
// (tinycl.max_abs, written by the calibration step) times the headroom 1.25; parameters get no headroom.
// BADFORMATS:  attnc-opt: error: lower-to-tinycl: formats must be one of uniform, calibrated, got 'fancy'
// BADHEADROOM: attnc-opt: error: lower-to-tinycl: headroom must be at least 1 (a factor on the calibrated max |x|), got 0.5

// The module records the mode and the headroom instead of one data format.
// CHECK: builtin.module attributes {tinycl.config = {total_bits = 16 : i64, rounding = "nearest-even", overflow = "saturate", pe_rows = 16 : i64, pe_cols = 16 : i64, sram_kb = 1024 : i64, snake = true, formats = "calibrated", headroom = 1.250000e+00 : f64}}

// x: 3.0·1.25 fits 16/13 (±4); W: 0.4 fits 16/15 exactly; the bias in the accumulator (13 + 15 fractional
// bits); the output 6.0·1.25 fits 16/12; the GELU table reads 16/12 codes and writes 16/13 (2.0·1.25); the ReLU's
// input range is smaller (1.5), so its input is one requantisation on the array to 16/14 (saturating), not a
// trip through float. Each chosen format records the max |x| that chose it.
// CHECK-LABEL: func.func @calibrated
// CHECK:      %y_x_q = tinycl.quantize %x nearest-even saturate {calibrated_max = 3.000000e+00 : f64} : (tensor<2x5x8xf32>) -> tensor<2x5x8x!tinycl.fixed<16, 13>>
// CHECK-NEXT: %y_w_q = tinycl.quantize %w nearest-even saturate {calibrated_max = 4.000000e-01 : f64} : (tensor<4x8xf32>) -> tensor<4x8x!tinycl.fixed<16, 15>>
// CHECK-NEXT: %y_b_q = tinycl.quantize %b nearest-even saturate : (tensor<4xf32>) -> tensor<4x!tinycl.fixed<37, 28>>
// CHECK-NEXT: %y_acc = tinycl.mac forward %y_x_q, %y_w_q, %y_b_q
// CHECK-NEXT: %y_q = tinycl.requant %y_acc nearest-even saturate {calibrated_max = 6.000000e+00 : f64} : (tensor<2x5x4x!tinycl.fixed<37, 28>>) -> tensor<2x5x4x!tinycl.fixed<16, 12>>
// CHECK-NEXT: %z_q = tinycl.lut %y_q gelu {calibrated_max = 2.000000e+00 : f64} : (tensor<2x5x4x!tinycl.fixed<16, 12>>) -> tensor<2x5x4x!tinycl.fixed<16, 13>>
// CHECK-NEXT: %r_x_q = tinycl.requant %z_q nearest-even saturate {calibrated_max = 1.500000e+00 : f64} : (tensor<2x5x4x!tinycl.fixed<16, 13>>) -> tensor<2x5x4x!tinycl.fixed<16, 14>>
// CHECK-NEXT: %r_q = tinycl.lut %r_x_q relu {calibrated_max = 1.500000e+00 : f64} : (tensor<2x5x4x!tinycl.fixed<16, 14>>) -> tensor<2x5x4x!tinycl.fixed<16, 14>>
// CHECK-NOT:  tinycl.max_abs
// At 8 bits with headroom 2: x's 3.0·2 fits 8/4 (±7.9); W's 0.4 gets 8/7 (no headroom; capped at total − 1).
// EIGHT-LABEL: func.func @calibrated
// EIGHT:      tinycl.quantize %x {{.*}} -> tensor<2x5x8x!tinycl.fixed<8, 4>>
// EIGHT-NEXT: tinycl.quantize %w {{.*}} -> tensor<4x8x!tinycl.fixed<8, 7>>
// Without formats=calibrated the recorded ranges change nothing (and are dropped).
// UNIFORM-LABEL: func.func @calibrated
// UNIFORM:       tinycl.quantize %x nearest-even saturate : (tensor<2x5x8xf32>) -> tensor<2x5x8x!tinycl.fixed<16, 8>>
// UNIFORM-NOT:   calibrated_max
// UNIFORM-NOT:   tinycl.max_abs
func.func @calibrated(%x: tensor<2x5x8xf32>) -> tensor<2x5x4xf32> {
  %w = nn.param @fc.weight : tensor<4x8xf32> loc("fc")
  %b = nn.param @fc.bias : tensor<4xf32> loc("fc")
  %y = nn.linear %x, %w, %b {tinycl.max_abs = {input = 3.0 : f64, weight = 0.4 : f64, result = 6.0 : f64}} : (tensor<2x5x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x5x4xf32> loc("fc")
  %z = nn.gelu %y {approximate = "none", tinycl.max_abs = {input = 6.0 : f64, result = 2.0 : f64}} : (tensor<2x5x4xf32>) -> tensor<2x5x4xf32> loc("act")
  %r = nn.relu %z {tinycl.max_abs = {input = 1.5 : f64, result = 1.5 : f64}} : (tensor<2x5x4xf32>) -> tensor<2x5x4xf32> loc("act2")
  func.return %r : tensor<2x5x4xf32>
}

// -----

// Attention: Q (3.0 → 16/13), K (5.0 → 16/12), V and the output (1.0 → 16/14) each from their range, the scores Q·Kᵀ from theirs (40 → 16/9), the
// probabilities in [0, 1] at total − 2 = 14 fractional bits.
// CHECK-LABEL: func.func @attention
// CHECK:      %o_q_q = tinycl.quantize %q {{.*}} -> tensor<1x2x5x8x!tinycl.fixed<16, 13>>
// CHECK:      %o_k_q = tinycl.quantize %k {{.*}} -> tensor<1x2x5x8x!tinycl.fixed<16, 12>>
// CHECK:      %o_vt_q = tinycl.quantize %o_vt {{.*}} -> tensor<1x2x8x5x!tinycl.fixed<16, 14>>
// CHECK:      %o_scores = tinycl.requant %o_scores_acc nearest-even saturate {calibrated_max = 4.000000e+01 : f64} : ({{.*}}) -> tensor<1x2x5x5x!tinycl.fixed<16, 9>>
// CHECK-NEXT: %o_probs = tinycl.softmax %o_scores {{.*}} -> tensor<1x2x5x5x!tinycl.fixed<16, 14>>
// CHECK:      %o_out_q = tinycl.requant %o_out_acc nearest-even saturate {calibrated_max = 1.000000e+00 : f64} : ({{.*}}) -> tensor<1x2x5x8x!tinycl.fixed<16, 14>>
func.func @attention(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.35355339059327379 : f64, causal = false, tinycl.max_abs = {query = 3.0 : f64, key = 5.0 : f64, value = 1.0 : f64, scores = 40.0 : f64, result = 1.0 : f64}} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> loc("attn")
  func.return %o : tensor<1x2x5x8xf32>
}

// -----

// negative: no recorded ranges yet: the module keeps its ops and asks the calibration step for them (the
// options travel with the request); attnc compile runs that step right after the pass.
// CHECK:       builtin.module attributes {tinycl.pending_formats = {total_bits = 16 : i64, {{.*}}, formats = "calibrated", headroom = 1.250000e+00 : f64}}
// CHECK-LABEL: func.func @negative_pending
// CHECK-NEXT:  nn.param
// CHECK-NEXT:  nn.linear
// CHECK-NOT:   tinycl.
// REMARK:      remark: lower-to-tinycl: <unknown>: formats=calibrated: the lowering runs once the calibration step (attnc compile, right after this pass) has recorded each quantisation point's max |x| on the calibration inputs
func.func @negative_pending(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = nn.param @fc.weight : tensor<4x8xf32> loc("fc")
  %y = nn.linear %x, %w : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32> loc("fc")
  func.return %y : tensor<2x4xf32>
}
