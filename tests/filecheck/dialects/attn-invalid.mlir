// RUN: attnc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier message of attn.sdpa (dialects/attn.py), including every message of the shared
// verify_attention_operands helper in dialects/nn.py. Each case checks the diagnostic, the op it is
// attached to, and that the annotated op carries the same message.

// attn.sdpa: "a causal attention takes no explicit mask: fold the mask or drop `causal`"
func.func @causal_with_mask(%q: tensor<1x4x16x64xf32>, %m: tensor<1x1x16x16xi1>) {
  %o = attn.sdpa %q, %q, %q mask %m {scale = 0.125 : f64, causal = true} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x1x16x16xi1>) -> tensor<1x4x16x64xf32>
  func.return
}
// CHECK:      a causal attention takes no explicit mask: fold the mask or drop `causal`
// CHECK:      %o = "attn.sdpa"(%q, %q, %q, %m) {scale = 1.250000e-01 : f64, causal = true} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x1x16x16xi1>) -> tensor<1x4x16x64xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: a causal attention takes no explicit mask: fold the mask or drop `causal`

// -----
// verify_attention_operands: "query, key and value must have rank >= 2, got ..."
func.func @rank(%q: tensor<2x9x16xf32>, %v: tensor<16xf32>) {
  %o = attn.sdpa %q, %q, %v {scale = 0.25 : f64, causal = false} : (tensor<2x9x16xf32>, tensor<2x9x16xf32>, tensor<16xf32>) -> tensor<2x9x16xf32>
  func.return
}
// CHECK:      query, key and value must have rank >= 2, got 2x9x16, 2x9x16, 16
// CHECK:      %o = "attn.sdpa"(%q, %q, %v) {scale = 2.500000e-01 : f64, causal = false} : (tensor<2x9x16xf32>, tensor<2x9x16xf32>, tensor<16xf32>) -> tensor<2x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: query, key and value must have rank >= 2, got 2x9x16, 2x9x16, 16

// -----
// verify_attention_operands: "query head size ... does not match key head size ..."
func.func @head_size(%q: tensor<2x4x9x64xf32>, %k: tensor<2x4x9x32xf32>) {
  %o = attn.sdpa %q, %k, %k {scale = 0.125 : f64, causal = false} : (tensor<2x4x9x64xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      query head size 64 does not match key head size 32
// CHECK:      %o = "attn.sdpa"(%q, %k, %k) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x9x64xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: query head size 64 does not match key head size 32

// -----
// verify_attention_operands: "key length ... does not match value length ..."
func.func @key_value_length(%q: tensor<2x4x9x32xf32>, %k: tensor<2x4x12x32xf32>, %v: tensor<2x4x9x32xf32>) {
  %o = attn.sdpa %q, %k, %v {scale = 0.125 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x12x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      key length 12 does not match value length 9
// CHECK:      %o = "attn.sdpa"(%q, %k, %v) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x12x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: key length 12 does not match value length 9

// -----
// verify_attention_operands: "batch dims of query ..., key ..., value ... do not broadcast" (value only)
func.func @batch(%q: tensor<2x4x9x32xf32>, %v: tensor<2x3x9x32xf32>) {
  %o = attn.sdpa %q, %q, %v {scale = 0.125 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x3x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      batch dims of query 2x4x9x32, key 2x4x9x32, value 2x3x9x32 do not broadcast
// CHECK:      %o = "attn.sdpa"(%q, %q, %v) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x3x9x32xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: batch dims of query 2x4x9x32, key 2x4x9x32, value 2x3x9x32 do not broadcast

// -----
// verify_attention_operands: "mask shape ... does not broadcast to the scores ..."
func.func @mask_shape(%q: tensor<2x4x9x32xf32>, %m: tensor<3x1x1x9xf32>) {
  %o = attn.sdpa %q, %q, %q mask %m {scale = 0.125 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<3x1x1x9xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      mask shape 3x1x1x9 does not broadcast to the scores 2x4x9x9
// CHECK:      %o = "attn.sdpa"(%q, %q, %q, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<3x1x1x9xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask shape 3x1x1x9 does not broadcast to the scores 2x4x9x9

// -----
// verify_attention_operands: the same message for a mask of higher rank than the scores
func.func @mask_rank(%q: tensor<4x9x32xf32>, %m: tensor<2x4x9x9xi1>) {
  %o = attn.sdpa %q, %q, %q mask %m {scale = 0.125 : f64, causal = false} : (tensor<4x9x32xf32>, tensor<4x9x32xf32>, tensor<4x9x32xf32>, tensor<2x4x9x9xi1>) -> tensor<4x9x32xf32>
  func.return
}
// CHECK:      mask shape 2x4x9x9 does not broadcast to the scores 4x9x9
// CHECK:      %o = "attn.sdpa"(%q, %q, %q, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<4x9x32xf32>, tensor<4x9x32xf32>, tensor<4x9x32xf32>, tensor<2x4x9x9xi1>) -> tensor<4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask shape 2x4x9x9 does not broadcast to the scores 4x9x9

// -----
// verify_attention_operands: "mask must be i1 (keep) or ... (additive), got ..."
func.func @mask_type(%q: tensor<2x4x9x32xf32>, %m: tensor<2x1x1x9xf16>) {
  %o = attn.sdpa %q, %q, %q mask %m {scale = 0.125 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x1x1x9xf16>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      mask must be i1 (keep) or f32 (additive), got f16
// CHECK:      %o = "attn.sdpa"(%q, %q, %q, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x1x1x9xf16>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask must be i1 (keep) or f32 (additive), got f16

// -----
// verify_attention_operands: expect_result_shape "(batch x query length x value size)"
func.func @result_shape(%q: tensor<2x4x16x32xf32>, %k: tensor<2x4x9x32xf32>) {
  %o = attn.sdpa %q, %k, %k {scale = 0.125 : f64, causal = false} : (tensor<2x4x16x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      result shape 2x4x9x32 does not match the expected 2x4x16x32 (batch x query length x value size)
// CHECK:      %o = "attn.sdpa"(%q, %k, %k) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x16x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x4x9x32 does not match the expected 2x4x16x32 (batch x query length x value size)

// -----
// verify_attention_operands: expect_same_element_type
func.func @element_type(%q: tensor<2x4x9x32xbf16>) {
  %o = attn.sdpa %q, %q, %q {scale = 0.125 : f64, causal = false} : (tensor<2x4x9x32xbf16>, tensor<2x4x9x32xbf16>, tensor<2x4x9x32xbf16>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      element type bf16 of an operand does not match the result's f32
// CHECK:      %o = "attn.sdpa"(%q, %q, %q) {scale = 1.250000e-01 : f64, causal = false} : (tensor<2x4x9x32xbf16>, tensor<2x4x9x32xbf16>, tensor<2x4x9x32xbf16>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type bf16 of an operand does not match the result's f32

// -----
// verify_attention_operands: "scale must be positive, got ..."
func.func @scale_zero(%q: tensor<2x4x9x32xf32>) {
  %o = attn.sdpa %q, %q, %q {scale = 0.0 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      scale must be positive, got 0.0
// CHECK:      %o = "attn.sdpa"(%q, %q, %q) {scale = 0.000000e+00 : f64, causal = false} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: scale must be positive, got 0.0

// -----
// attn.sdpa: "softcap must be positive, got ..."
func.func @softcap_zero(%q: tensor<2x4x9x32xf32>) {
  %o = attn.sdpa %q, %q, %q {scale = 0.125 : f64, causal = false, softcap = 0.0 : f64} : (tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      softcap must be positive, got 0.0

