// RUN: attnc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier message of attn.kv_clip and attn.softmax (dialects/attn.py), with both sides of
// the range checks where the message covers two bounds. Each case checks the diagnostic, the op it is
// attached to, and that the annotated op carries the same message.

// attn.kv_clip: "kv_clip acts on stored matrices (..., rows, cols), got ..."
func.func @kv_clip_rank(%k: tensor<32xf32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<32xf32>) -> tensor<32xf32>
  func.return
}
// CHECK:      kv_clip acts on stored matrices (..., rows, cols), got 32
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<32xf32>) -> tensor<32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_clip acts on stored matrices (..., rows, cols), got 32

// -----
// attn.kv_clip: "kv_clip takes a floating-point tensor, got ..."
func.func @kv_clip_integer(%k: tensor<16x32xi32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<16x32xi32>) -> tensor<16x32xi32>
  func.return
}
// CHECK:      kv_clip takes a floating-point tensor, got i32
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<16x32xi32>) -> tensor<16x32xi32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_clip takes a floating-point tensor, got i32

// -----
// attn.kv_clip: "result type ... must equal the operand type ..."
func.func @kv_clip_result_type(%k: tensor<16x32xf32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<16x32xf32>) -> tensor<16x32xf16>
  func.return
}
// CHECK:      result type tensor<16x32xf16> must equal the operand type tensor<16x32xf32>
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<16x32xf32>) -> tensor<16x32xf16>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result type tensor<16x32xf16> must equal the operand type tensor<16x32xf32>

// -----
// attn.kv_clip: "alpha must be >= 0 (a dead zone of alpha·g_min), got ..."
func.func @kv_clip_alpha(%k: tensor<1x12x16x32xf32>) {
  %kc = attn.kv_clip %k {alpha = -1.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
  func.return
}
// CHECK:      alpha must be >= 0 (a dead zone of alpha·g_min), got -1.0
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = -1.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: alpha must be >= 0 (a dead zone of alpha·g_min), got -1.0

// -----
// attn.kv_clip: "beta must be in (0, 1] (a ceiling of beta·g_max), got ..." (beta = 0)
func.func @kv_clip_beta_zero(%k: tensor<1x12x16x32xf32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.0 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
  func.return
}
// CHECK:      beta must be in (0, 1] (a ceiling of beta·g_max), got 0.0
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 0.000000e+00 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: beta must be in (0, 1] (a ceiling of beta·g_max), got 0.0

// -----
// attn.kv_clip: the same message for beta > 1
func.func @kv_clip_beta_above_one(%k: tensor<1x12x16x32xf32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 1.5 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
  func.return
}
// CHECK:      beta must be in (0, 1] (a ceiling of beta·g_max), got 1.5
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 1.500000e+00 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: beta must be in (0, 1] (a ceiling of beta·g_max), got 1.5

// -----
// attn.kv_clip: "need 0 <= g_min < g_max, got ..." (g_min = g_max)
func.func @kv_clip_empty_range(%k: tensor<1x12x16x32xf32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-05 : f64, g_max = 1.0e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
  func.return
}
// CHECK:      need 0 <= g_min < g_max, got g_min = 1e-05, g_max = 1e-05
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-05 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: need 0 <= g_min < g_max, got g_min = 1e-05, g_max = 1e-05

// -----
// attn.kv_clip: the same message for a negative g_min
func.func @kv_clip_negative_g_min(%k: tensor<1x12x16x32xf32>) {
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = -1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
  func.return
}
// CHECK:      need 0 <= g_min < g_max, got g_min = -1e-07, g_max = 1e-05
// CHECK:      %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = -1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: need 0 <= g_min < g_max, got g_min = -1e-07, g_max = 1e-05

// -----
// attn.softmax: "scores must be (..., queries, keys), got ..."
func.func @softmax_rank(%s: tensor<16xf32>) {
  %p = attn.softmax %s {scale = 0.125 : f64, causal = false} : (tensor<16xf32>) -> tensor<16xf32>
  func.return
}
// CHECK:      scores must be (..., queries, keys), got 16
// CHECK:      %p = "attn.softmax"(%s) {scale = 1.250000e-01 : f64, causal = false} : (tensor<16xf32>) -> tensor<16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: scores must be (..., queries, keys), got 16

// -----
// attn.softmax: "result type ... must equal the scores type ..."
func.func @softmax_result_type(%s: tensor<4x16x16xf32>) {
  %p = attn.softmax %s {scale = 0.125 : f64, causal = false} : (tensor<4x16x16xf32>) -> tensor<4x16x8xf32>
  func.return
}
// CHECK:      result type tensor<4x16x8xf32> must equal the scores type tensor<4x16x16xf32>
// CHECK:      %p = "attn.softmax"(%s) {scale = 1.250000e-01 : f64, causal = false} : (tensor<4x16x16xf32>) -> tensor<4x16x8xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result type tensor<4x16x8xf32> must equal the scores type tensor<4x16x16xf32>

// -----
// attn.softmax: "mask ... does not broadcast to the scores ..." (incompatible dims)
func.func @softmax_mask_shape(%s: tensor<4x16x16xf32>, %m: tensor<16x8xf32>) {
  %p = attn.softmax %s mask %m {scale = 0.125 : f64, causal = false} : (tensor<4x16x16xf32>, tensor<16x8xf32>) -> tensor<4x16x16xf32>
  func.return
}
// CHECK:      mask 16x8 does not broadcast to the scores 4x16x16
// CHECK:      %p = "attn.softmax"(%s, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<4x16x16xf32>, tensor<16x8xf32>) -> tensor<4x16x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask 16x8 does not broadcast to the scores 4x16x16

// -----
// attn.softmax: the same message for a mask that broadcasts with the scores to a larger shape
func.func @softmax_mask_widens(%s: tensor<1x4x16x16xf32>, %m: tensor<2x1x16x16xi1>) {
  %p = attn.softmax %s mask %m {scale = 0.125 : f64, causal = false} : (tensor<1x4x16x16xf32>, tensor<2x1x16x16xi1>) -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK:      mask 2x1x16x16 does not broadcast to the scores 1x4x16x16
// CHECK:      %p = "attn.softmax"(%s, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x4x16x16xf32>, tensor<2x1x16x16xi1>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask 2x1x16x16 does not broadcast to the scores 1x4x16x16

// -----
// attn.softmax: "a causal softmax takes no explicit mask: fold the mask or drop `causal`"
func.func @softmax_causal_with_mask(%s: tensor<1x4x16x16xf32>, %m: tensor<16x16xi1>) {
  %p = attn.softmax %s mask %m {scale = 0.125 : f64, causal = true} : (tensor<1x4x16x16xf32>, tensor<16x16xi1>) -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK:      a causal softmax takes no explicit mask: fold the mask or drop `causal`
// CHECK:      %p = "attn.softmax"(%s, %m) {scale = 1.250000e-01 : f64, causal = true} : (tensor<1x4x16x16xf32>, tensor<16x16xi1>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: a causal softmax takes no explicit mask: fold the mask or drop `causal`

// -----
// attn.softmax: "scores must be floating point, got ..."
func.func @softmax_integer_scores(%s: tensor<1x4x16x16xi32>) {
  %p = attn.softmax %s {scale = 0.125 : f64, causal = false} : (tensor<1x4x16x16xi32>) -> tensor<1x4x16x16xi32>
  func.return
}
// CHECK:      scores must be floating point, got i32
// CHECK:      %p = "attn.softmax"(%s) {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x4x16x16xi32>) -> tensor<1x4x16x16xi32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: scores must be floating point, got i32

// -----
// attn.softmax: "scale must be positive, got ..."
func.func @softmax_negative_scale(%s: tensor<1x4x16x16xf32>) {
  %p = attn.softmax %s {scale = -1.0 : f64, causal = false} : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK:      scale must be positive, got -1.0
// CHECK:      %p = "attn.softmax"(%s) {scale = -1.000000e+00 : f64, causal = false} : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: scale must be positive, got -1.0

// -----
// attn.softmax: "mask must be i1 (keep) or <scores type> (additive, like the scores), got ..."
func.func @softmax_integer_mask(%s: tensor<1x4x16x16xf32>, %m: tensor<1x1x16x16xi32>) {
  %p = attn.softmax %s mask %m {scale = 0.125 : f64, causal = false} : (tensor<1x4x16x16xf32>, tensor<1x1x16x16xi32>) -> tensor<1x4x16x16xf32>
  func.return
}
// CHECK:      mask must be i1 (keep) or f32 (additive, like the scores), got i32
// CHECK:      %p = "attn.softmax"(%s, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x4x16x16xf32>, tensor<1x1x16x16xi32>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask must be i1 (keep) or f32 (additive, like the scores), got i32
