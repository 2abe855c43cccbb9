// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s --print-op-generic --print-debuginfo | attnc-opt --print-op-generic --print-debuginfo | filecheck %s --check-prefix=GENERIC

// Round trip of attn.kv_clip and attn.softmax in their custom form (parse, print, re-parse, print again;
// both prints identical) and in their generic form with locations: kv_clip on a batched (batch, heads,
// length, dim) K and on a single rank-2 matrix carrying its module path as location; softmax without a
// mask, with an additive f32 mask, with a rank-2 boolean keep mask broadcast to the scores, and causal.

// CHECK-LABEL: func.func @kv_clip_rank4(
// GENERIC-LABEL: "func.func"() <{sym_name = "kv_clip_rank4"
func.func @kv_clip_rank4(%k: tensor<1x12x16x32xf32>) {
  // GENERIC-NEXT: ^bb0(%k: tensor<1x12x16x32xf32> loc(unknown)):
  %kc = attn.kv_clip %k {alpha = 2.0 : f64, beta = 0.25 : f64, g_min = 1.0e-07 : f64, g_max = 1.0e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>
  // CHECK-NEXT:   %kc = attn.kv_clip %k {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32>{{$}}
  // GENERIC-NEXT: %kc = "attn.kv_clip"(%k) {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<1x12x16x32xf32>) -> tensor<1x12x16x32xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// A single f16 matrix, the identity clip (alpha = 0, beta = 1) and g_min = 0 (the boundaries the verifier
// accepts). The module path survives as location; without --print-debuginfo nothing follows the type.
// CHECK-LABEL: func.func @kv_clip_rank2(
// GENERIC-LABEL: "func.func"() <{sym_name = "kv_clip_rank2"
func.func @kv_clip_rank2(%v: tensor<16x32xf16>) {
  // GENERIC-NEXT: ^bb0(%v: tensor<16x32xf16> loc(unknown)):
  %vc = attn.kv_clip %v {alpha = 0.0 : f64, beta = 1.0 : f64, g_min = 0.0 : f64, g_max = 1.0e-05 : f64} : (tensor<16x32xf16>) -> tensor<16x32xf16> loc("encoder.layer.0.attention.self")
  // CHECK-NEXT:   %vc = attn.kv_clip %v {alpha = 0.000000e+00 : f64, beta = 1.000000e+00 : f64, g_min = 0.000000e+00 : f64, g_max = 1.000000e-05 : f64} : (tensor<16x32xf16>) -> tensor<16x32xf16>{{$}}
  // GENERIC-NEXT: %vc = "attn.kv_clip"(%v) {alpha = 0.000000e+00 : f64, beta = 1.000000e+00 : f64, g_min = 0.000000e+00 : f64, g_max = 1.000000e-05 : f64} : (tensor<16x32xf16>) -> tensor<16x32xf16> loc("encoder.layer.0.attention.self")
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// CHECK-LABEL: func.func @softmax_no_mask(
// GENERIC-LABEL: "func.func"() <{sym_name = "softmax_no_mask"
func.func @softmax_no_mask(%s: tensor<1x12x16x16xf32>) {
  // GENERIC-NEXT: ^bb0(%s: tensor<1x12x16x16xf32> loc(unknown)):
  %p = attn.softmax %s {scale = 0.1767766952966369 : f64, causal = false} : (tensor<1x12x16x16xf32>) -> tensor<1x12x16x16xf32>
  // CHECK-NEXT:   %p = attn.softmax %s {scale = 0.17677669529663689 : f64, causal = false} : (tensor<1x12x16x16xf32>) -> tensor<1x12x16x16xf32>{{$}}
  // GENERIC-NEXT: %p = "attn.softmax"(%s) {scale = 0.17677669529663689 : f64, causal = false} : (tensor<1x12x16x16xf32>) -> tensor<1x12x16x16xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// CHECK-LABEL: func.func @softmax_float_mask(
// GENERIC-LABEL: "func.func"() <{sym_name = "softmax_float_mask"
func.func @softmax_float_mask(%s: tensor<1x12x16x16xf32>, %m: tensor<1x1x16x16xf32>) {
  // GENERIC-NEXT: ^bb0(%s: tensor<1x12x16x16xf32> loc(unknown), %m: tensor<1x1x16x16xf32> loc(unknown)):
  %p = attn.softmax %s mask %m {scale = 0.125 : f64, causal = false} : (tensor<1x12x16x16xf32>, tensor<1x1x16x16xf32>) -> tensor<1x12x16x16xf32>
  // CHECK-NEXT:   %p = attn.softmax %s mask %m {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x12x16x16xf32>, tensor<1x1x16x16xf32>) -> tensor<1x12x16x16xf32>{{$}}
  // GENERIC-NEXT: %p = "attn.softmax"(%s, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x12x16x16xf32>, tensor<1x1x16x16xf32>) -> tensor<1x12x16x16xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// Lq != Lk, and a rank-2 boolean keep mask broadcast over batch and heads.
// CHECK-LABEL: func.func @softmax_bool_mask(
// GENERIC-LABEL: "func.func"() <{sym_name = "softmax_bool_mask"
func.func @softmax_bool_mask(%s: tensor<2x4x16x8xf32>, %m: tensor<16x8xi1>) {
  // GENERIC-NEXT: ^bb0(%s: tensor<2x4x16x8xf32> loc(unknown), %m: tensor<16x8xi1> loc(unknown)):
  %p = attn.softmax %s mask %m {scale = 1.0 : f64, causal = false} : (tensor<2x4x16x8xf32>, tensor<16x8xi1>) -> tensor<2x4x16x8xf32>
  // CHECK-NEXT:   %p = attn.softmax %s mask %m {scale = 1.000000e+00 : f64, causal = false} : (tensor<2x4x16x8xf32>, tensor<16x8xi1>) -> tensor<2x4x16x8xf32>{{$}}
  // GENERIC-NEXT: %p = "attn.softmax"(%s, %m) {scale = 1.000000e+00 : f64, causal = false} : (tensor<2x4x16x8xf32>, tensor<16x8xi1>) -> tensor<2x4x16x8xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// CHECK-LABEL: func.func @softmax_causal(
// GENERIC-LABEL: "func.func"() <{sym_name = "softmax_causal"
func.func @softmax_causal(%s: tensor<1x4x16x16xf32>) {
  // GENERIC-NEXT: ^bb0(%s: tensor<1x4x16x16xf32> loc(unknown)):
  %p = attn.softmax %s {scale = 0.125 : f64, causal = true} : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32> loc("decoder.layer.3.self_attn")
  // CHECK-NEXT:   %p = attn.softmax %s {scale = 1.250000e-01 : f64, causal = true} : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>{{$}}
  // GENERIC-NEXT: %p = "attn.softmax"(%s) {scale = 1.250000e-01 : f64, causal = true} : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32> loc("decoder.layer.3.self_attn")
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}
