// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s --print-op-generic --print-debuginfo | attnc-opt --print-op-generic --print-debuginfo | filecheck %s --check-prefix=GENERIC

// Round trip of attn.sdpa in its custom form (parse, print, re-parse, print again; both prints identical)
// and in its generic form with locations: without a mask, with an additive f32 mask and a boolean keep
// mask, causal, with batch dimensions broadcast across q/k/v, and carrying its module path as location.

// CHECK-LABEL: func.func @no_mask(
// GENERIC-LABEL: "func.func"() <{sym_name = "no_mask"
func.func @no_mask(%q: tensor<2x12x9x32xf32>, %k: tensor<2x12x9x32xf32>, %v: tensor<2x12x9x32xf32>) {
  // GENERIC-NEXT: ^bb0(%q: tensor<2x12x9x32xf32> loc(unknown), %k: tensor<2x12x9x32xf32> loc(unknown), %v: tensor<2x12x9x32xf32> loc(unknown)):
  %o = attn.sdpa %q, %k, %v {scale = 0.1767766952966369 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT:   %o = attn.sdpa %q, %k, %v {scale = 0.17677669529663689 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32>{{$}}
  // GENERIC-NEXT: %o = "attn.sdpa"(%q, %k, %v) {scale = 0.17677669529663689 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// CHECK-LABEL: func.func @float_mask(
// GENERIC-LABEL: "func.func"() <{sym_name = "float_mask"
func.func @float_mask(%q: tensor<2x12x9x32xf32>, %k: tensor<2x12x9x32xf32>, %v: tensor<2x12x9x32xf32>, %m: tensor<2x1x1x9xf32>) {
  // GENERIC-NEXT: ^bb0(%q: tensor<2x12x9x32xf32> loc(unknown), %k: tensor<2x12x9x32xf32> loc(unknown), %v: tensor<2x12x9x32xf32> loc(unknown), %m: tensor<2x1x1x9xf32> loc(unknown)):
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.1767766952966369 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x1x9xf32>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT:   %o = attn.sdpa %q, %k, %v mask %m {scale = 0.17677669529663689 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x1x9xf32>) -> tensor<2x12x9x32xf32>{{$}}
  // GENERIC-NEXT: %o = "attn.sdpa"(%q, %k, %v, %m) {scale = 0.17677669529663689 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x1x9xf32>) -> tensor<2x12x9x32xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// Lq != Lk, Ev != E, and a rank-2 boolean mask broadcast to the scores.
// CHECK-LABEL: func.func @bool_mask(
// GENERIC-LABEL: "func.func"() <{sym_name = "bool_mask"
func.func @bool_mask(%q: tensor<1x4x16x64xf32>, %k: tensor<1x4x8x64xf32>, %v: tensor<1x4x8x32xf32>, %m: tensor<16x8xi1>) {
  // GENERIC-NEXT: ^bb0(%q: tensor<1x4x16x64xf32> loc(unknown), %k: tensor<1x4x8x64xf32> loc(unknown), %v: tensor<1x4x8x32xf32> loc(unknown), %m: tensor<16x8xi1> loc(unknown)):
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.125 : f64, causal = false} : (tensor<1x4x16x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x32xf32>, tensor<16x8xi1>) -> tensor<1x4x16x32xf32>
  // CHECK-NEXT:   %o = attn.sdpa %q, %k, %v mask %m {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x4x16x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x32xf32>, tensor<16x8xi1>) -> tensor<1x4x16x32xf32>{{$}}
  // GENERIC-NEXT: %o = "attn.sdpa"(%q, %k, %v, %m) {scale = 1.250000e-01 : f64, causal = false} : (tensor<1x4x16x64xf32>, tensor<1x4x8x64xf32>, tensor<1x4x8x32xf32>, tensor<16x8xi1>) -> tensor<1x4x16x32xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// CHECK-LABEL: func.func @causal(
// GENERIC-LABEL: "func.func"() <{sym_name = "causal"
func.func @causal(%q: tensor<1x4x16x64xf32>, %k: tensor<1x4x16x64xf32>, %v: tensor<1x4x16x64xf32>) {
  // GENERIC-NEXT: ^bb0(%q: tensor<1x4x16x64xf32> loc(unknown), %k: tensor<1x4x16x64xf32> loc(unknown), %v: tensor<1x4x16x64xf32> loc(unknown)):
  %o = attn.sdpa %q, %k, %v {scale = 0.125 : f64, causal = true} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>) -> tensor<1x4x16x64xf32>
  // CHECK-NEXT:   %o = attn.sdpa %q, %k, %v {scale = 1.250000e-01 : f64, causal = true} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>) -> tensor<1x4x16x64xf32>{{$}}
  // GENERIC-NEXT: %o = "attn.sdpa"(%q, %k, %v) {scale = 1.250000e-01 : f64, causal = true} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>) -> tensor<1x4x16x64xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// q and k carry no batch dimensions: the result takes the batch of v, as in PyTorch.
// CHECK-LABEL: func.func @broadcast_batch(
// GENERIC-LABEL: "func.func"() <{sym_name = "broadcast_batch"
func.func @broadcast_batch(%q: tensor<9x32xf32>, %k: tensor<9x32xf32>, %v: tensor<2x1x9x16xf32>) {
  // GENERIC-NEXT: ^bb0(%q: tensor<9x32xf32> loc(unknown), %k: tensor<9x32xf32> loc(unknown), %v: tensor<2x1x9x16xf32> loc(unknown)):
  %o = attn.sdpa %q, %k, %v {scale = 1.0 : f64, causal = false} : (tensor<9x32xf32>, tensor<9x32xf32>, tensor<2x1x9x16xf32>) -> tensor<2x1x9x16xf32>
  // CHECK-NEXT:   %o = attn.sdpa %q, %k, %v {scale = 1.000000e+00 : f64, causal = false} : (tensor<9x32xf32>, tensor<9x32xf32>, tensor<2x1x9x16xf32>) -> tensor<2x1x9x16xf32>{{$}}
  // GENERIC-NEXT: %o = "attn.sdpa"(%q, %k, %v) {scale = 1.000000e+00 : f64, causal = false} : (tensor<9x32xf32>, tensor<9x32xf32>, tensor<2x1x9x16xf32>) -> tensor<2x1x9x16xf32> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// The module path survives as location; without --print-debuginfo nothing is printed after the type.
// CHECK-LABEL: func.func @location(
// GENERIC-LABEL: "func.func"() <{sym_name = "location"
func.func @location(%q: tensor<2x12x9x32xf32>, %m: tensor<2x1x9x9xf32>) {
  // GENERIC-NEXT: ^bb0(%q: tensor<2x12x9x32xf32> loc(unknown), %m: tensor<2x1x9x9xf32> loc(unknown)):
  %o = attn.sdpa %q, %q, %q mask %m {scale = 0.1767766952966369 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xf32>) -> tensor<2x12x9x32xf32> loc("encoder.layer.0.attention.self")
  // CHECK-NEXT:   %o = attn.sdpa %q, %q, %q mask %m {scale = 0.17677669529663689 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xf32>) -> tensor<2x12x9x32xf32>{{$}}
  // GENERIC-NEXT: %o = "attn.sdpa"(%q, %q, %q, %m) {scale = 0.17677669529663689 : f64, causal = false} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xf32>) -> tensor<2x12x9x32xf32> loc("encoder.layer.0.attention.self")
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// The optional soft-cap (Gemma-2): printed only when present.
// CHECK-LABEL: func.func @soft_capped(
// GENERIC-LABEL: "func.func"() <{sym_name = "soft_capped"
func.func @soft_capped(%q: tensor<1x4x9x32xf32>) {
  %o = attn.sdpa %q, %q, %q {scale = 0.125 : f64, causal = true, softcap = 50.0 : f64} : (tensor<1x4x9x32xf32>, tensor<1x4x9x32xf32>, tensor<1x4x9x32xf32>) -> tensor<1x4x9x32xf32>
  // CHECK-NEXT: %o = attn.sdpa %q, %q, %q {scale = 1.250000e-01 : f64, causal = true, softcap = 5.000000e+01 : f64} : (tensor<1x4x9x32xf32>, tensor<1x4x9x32xf32>, tensor<1x4x9x32xf32>) -> tensor<1x4x9x32xf32>
  func.return
}

