// RUN: attnc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier message of the abft ops (dialects/abft.py).

func.func @bad_check(%q: tensor<1x2x8x16xf32>) {
  %o = abft.sdpa "crc" %q, %q, %q tol 1.0e-04 block 64 on_fault "raise" {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  func.return
}
// CHECK: Operation does not verify: check must be one of flash, per-gemm, both, got "crc"

// -----
func.func @bad_policy(%q: tensor<1x2x8x16xf32>) {
  %o = abft.sdpa "flash" %q, %q, %q tol 1.0e-04 block 64 on_fault "ignore" {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  func.return
}
// CHECK: Operation does not verify: on_fault must be one of raise, recompute, count, got "ignore"

// -----
func.func @bad_tol(%q: tensor<1x2x8x16xf32>) {
  %o = abft.sdpa "flash" %q, %q, %q tol 2.0 block 64 on_fault "raise" {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  func.return
}
// CHECK: Operation does not verify: tol is relative and must be in (0, 0.5], got 2.0

// -----
func.func @bad_block(%q: tensor<1x2x8x16xf32>) {
  %o = abft.sdpa "flash" %q, %q, %q tol 1.0e-04 block 0 on_fault "raise" {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  func.return
}
// CHECK: Operation does not verify: block must be at least 1 key, got 0

// -----
func.func @causal_with_mask(%q: tensor<1x2x8x16xf32>, %m: tensor<1x1x8x8xi1>) {
  %o = abft.sdpa "flash" %q, %q, %q mask %m tol 1.0e-04 block 64 on_fault "raise" {scale = 0.25 : f64, causal = true} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x1x8x8xi1>) -> tensor<1x2x8x16xf32>
  func.return
}
// CHECK: Operation does not verify: a causal attention takes no explicit mask: fold the mask or drop `causal`

// -----
func.func @attention_shapes(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x12xf32>) {
  %o = abft.sdpa "flash" %q, %k, %k tol 1.0e-04 block 64 on_fault "raise" {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x12xf32>, tensor<1x2x8x12xf32>) -> tensor<1x2x8x12xf32>
  func.return
}
// CHECK: Operation does not verify: query head size 16 does not match key head size 12

// -----
func.func @linear_shape(%x: tensor<2x8x16xf32>, %w: tensor<4x12xf32>) {
  %y = abft.linear %x, %w tol 1.0e-04 on_fault "raise" : (tensor<2x8x16xf32>, tensor<4x12xf32>) -> tensor<2x8x4xf32>
  func.return
}
// CHECK: Operation does not verify: linear input feature size 16 does not match weight 4x12

// -----
func.func @linear_bias(%x: tensor<2x8x16xf32>, %w: tensor<4x16xf32>, %b: tensor<3xf32>) {
  %y = abft.linear %x, %w, %b tol 1.0e-04 on_fault "raise" : (tensor<2x8x16xf32>, tensor<4x16xf32>, tensor<3xf32>) -> tensor<2x8x4xf32>
  func.return
}
// CHECK: Operation does not verify: linear bias must have shape 4, got 3

// -----
func.func @linear_policy(%x: tensor<2x8x16xf32>, %w: tensor<4x16xf32>) {
  %y = abft.linear %x, %w tol 0.0 on_fault "raise" : (tensor<2x8x16xf32>, tensor<4x16xf32>) -> tensor<2x8x4xf32>
  func.return
}
// CHECK: Operation does not verify: tol is relative and must be in (0, 0.5], got 0.0
