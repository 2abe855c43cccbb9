// RUN: attnc-opt %s --split-input-file | attnc-opt --split-input-file | filecheck %s
// RUN: attnc-opt %s --split-input-file --print-op-generic | attnc-opt --split-input-file | filecheck %s

// Round trip of attn.cosine (custom and generic form), without and with a keep-mask, causal and not.

// CHECK-LABEL: func.func @cosine_bidirectional(
func.func @cosine_bidirectional(%q: tensor<2x12x9x32xf32>, %m: tensor<12xf32>, %keep: tensor<2x1x9x9xi1>) {
  %o = attn.cosine %q, %q, %q, %m mask %keep {causal = false, form = "chunked"} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<12xf32>, tensor<2x1x9x9xi1>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT: %o = attn.cosine %q, %q, %q, %m mask %keep {causal = false, form = "chunked"} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<12xf32>, tensor<2x1x9x9xi1>) -> tensor<2x12x9x32xf32>
  func.return
}

// -----

// CHECK-LABEL: func.func @cosine_causal_recurrent(
func.func @cosine_causal_recurrent(%q: tensor<1x4x16x64xf32>, %v: tensor<1x4x16x32xf32>, %m: tensor<4xf32>) {
  %o = attn.cosine %q, %q, %v, %m {causal = true, form = "recurrent"} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x32xf32>, tensor<4xf32>) -> tensor<1x4x16x32xf32>
  // CHECK-NEXT: %o = attn.cosine %q, %q, %v, %m {causal = true, form = "recurrent"} : (tensor<1x4x16x64xf32>, tensor<1x4x16x64xf32>, tensor<1x4x16x32xf32>, tensor<4xf32>) -> tensor<1x4x16x32xf32>
  func.return
}
