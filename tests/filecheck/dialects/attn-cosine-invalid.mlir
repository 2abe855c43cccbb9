// RUN: attnc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier message of attn.cosine (the shared attention checks are covered in attn-invalid.mlir).

// "cosine attention takes (batch, heads, length, dim) operands, got query ..."
func.func @rank(%q: tensor<9x32xf32>, %m: tensor<1xf32>) {
  %o = attn.cosine %q, %q, %q, %m {causal = false, form = "chunked"} : (tensor<9x32xf32>, tensor<9x32xf32>, tensor<9x32xf32>, tensor<1xf32>) -> tensor<9x32xf32>
  func.return
}
// CHECK: cosine attention takes (batch, heads, length, dim) operands, got query 9x32

// -----
// "m must hold one value per head ..."
func.func @m_shape(%q: tensor<2x12x9x32xf32>, %m: tensor<4xf32>) {
  %o = attn.cosine %q, %q, %q, %m {causal = false, form = "chunked"} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<4xf32>) -> tensor<2x12x9x32xf32>
  func.return
}
// CHECK: m must hold one value per head (12), got 4

// -----
// "m must have the query's element type ..."
func.func @m_type(%q: tensor<2x12x9x32xf32>, %m: tensor<12xf64>) {
  %o = attn.cosine %q, %q, %q, %m {causal = false, form = "chunked"} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<12xf64>) -> tensor<2x12x9x32xf32>
  func.return
}
// CHECK: m must have the query's element type f32

// -----
// "cosine attention takes an i1 keep-mask, got ..."
func.func @float_mask(%q: tensor<2x12x9x32xf32>, %m: tensor<12xf32>, %mask: tensor<2x1x9x9xf32>) {
  %o = attn.cosine %q, %q, %q, %m mask %mask {causal = false, form = "chunked"} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<12xf32>, tensor<2x1x9x9xf32>) -> tensor<2x12x9x32xf32>
  func.return
}
// CHECK: cosine attention takes an i1 keep-mask, got f32

// -----
// "form must be one of chunked, recurrent, got ..."
func.func @form(%q: tensor<2x12x9x32xf32>, %m: tensor<12xf32>) {
  %o = attn.cosine %q, %q, %q, %m {causal = true, form = "bogus"} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<12xf32>) -> tensor<2x12x9x32xf32>
  func.return
}
// CHECK: form must be one of chunked, recurrent, got "bogus"
