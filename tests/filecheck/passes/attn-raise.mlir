// RUN: attnc-opt %s -p attn-raise --split-input-file | filecheck %s

// Fused SDPA without a scale: PyTorch's default 1/sqrt(E) (E = 32) becomes explicit.

func.func @fused_sdpa_default_scale(%q: tensor<2x4x8x32xf32>, %k: tensor<2x4x8x32xf32>, %v: tensor<2x4x8x32xf32>) -> tensor<2x4x8x32xf32> {
  %o = nn.sdpa %q, %k, %v {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>) -> tensor<2x4x8x32xf32>
  func.return %o : tensor<2x4x8x32xf32>
}

// CHECK-LABEL: func.func @fused_sdpa_default_scale
// CHECK-NOT:     nn.sdpa
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 0.17677669529663687 : f64, causal = false}
// CHECK-NOT:     nn.sdpa

// -----

// A float mask is carried over as the additive mask.

func.func @fused_sdpa_float_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> {
  %o = nn.sdpa %q, %k, %v mask %m {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @fused_sdpa_float_mask
// CHECK-NOT:     nn.sdpa
// CHECK:         %o = attn.sdpa %q, %k, %v mask %m {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.sdpa

// -----

// A boolean mask (keep the true positions) is carried over unchanged.

func.func @fused_sdpa_bool_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<8x8xi1>) -> tensor<2x4x8x16xf32> {
  %o = nn.sdpa %q, %k, %v mask %m {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<8x8xi1>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @fused_sdpa_bool_mask
// CHECK-NOT:     nn.sdpa
// CHECK:         %o = attn.sdpa %q, %k, %v mask %m {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.sdpa

// -----

// is_causal becomes causal = true.

func.func @fused_sdpa_causal(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %o = nn.sdpa %q, %k, %v {causal = true, dropout_p = 0.0 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @fused_sdpa_causal
// CHECK-NOT:     nn.sdpa
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = true}
// CHECK-NOT:     nn.sdpa

// -----

// An explicit scale is kept as given.

func.func @fused_sdpa_explicit_scale(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %o = nn.sdpa %q, %k, %v {scale = 0.5 : f64, causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @fused_sdpa_explicit_scale
// CHECK-NOT:     nn.sdpa
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 5.000000e-01 : f64, causal = false}
// CHECK-NOT:     nn.sdpa

// -----

// Dropout inside the fused op is not an inference-time identity here: left alone.

func.func @negative_fused_sdpa_dropout(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %o = nn.sdpa %q, %k, %v {causal = false, dropout_p = 0.1 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_fused_sdpa_dropout
// CHECK-NOT:     attn.sdpa
// CHECK:         %o = nn.sdpa %q, %k, %v {causal = false, dropout_p = 1.000000e-01 : f64}
// CHECK-NOT:     attn.sdpa

// -----

// attn.sdpa takes causal or a mask, never both: left alone instead of producing invalid IR.

func.func @negative_fused_sdpa_causal_with_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<8x8xi1>) -> tensor<2x4x8x16xf32> {
  %o = nn.sdpa %q, %k, %v mask %m {causal = true, dropout_p = 0.0 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<8x8xi1>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_fused_sdpa_causal_with_mask
// CHECK-NOT:     attn.sdpa
// CHECK:         %o = nn.sdpa %q, %k, %v mask %m {causal = true, dropout_p = 0.000000e+00 : f64}
// CHECK-NOT:     attn.sdpa

// -----

// Eager BERT: matmul(q, transpose(k, 2, 3)) * c + mask -> softmax(-1) -> matmul(., v).

func.func @eager_bert(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %sm = nn.add %ss, %m : (tensor<2x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_bert
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.transpose
// CHECK-NOT:     nn.mul
// CHECK-NOT:     nn.add
// CHECK:         %o = attn.sdpa %q, %k, %v mask %m {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.transpose
// CHECK-NOT:     nn.mul
// CHECK-NOT:     nn.add

// -----

// Eager GPT-2: scores divided by a constant (scale = 1/4), kT by negative dims, softmax dim 3 = last.

func.func @eager_div_gpt2(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = -1 : i64, dim1 = -2 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<4.0> : tensor<f32>
  %ss = nn.div %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %ss {dim = 3 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_div_gpt2
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.transpose
// CHECK-NOT:     nn.div
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.transpose
// CHECK-NOT:     nn.div

// -----

// The constant on the left of the mul and the mask on the left of the add.

func.func @eager_constant_scale_on_left_with_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %c, %s : (tensor<f32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %sm = nn.add %m, %ss : (tensor<2x1x1x8xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_constant_scale_on_left_with_mask
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.mul
// CHECK-NOT:     nn.add
// CHECK:         %o = attn.sdpa %q, %k, %v mask %m {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.mul
// CHECK-NOT:     nn.add

// -----

// nn.MultiheadAttention on 3-d (batch*heads) tensors: the scale is applied to q before the matmul.

func.func @eager_mha_scale_on_q(%q: tensor<10x8x16xf32>, %k: tensor<10x8x16xf32>, %v: tensor<10x8x16xf32>) -> tensor<8x10x16xf32> {
  %qh = nn.transpose %q {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<10x8x16xf32>) -> tensor<8x10x16xf32>
  %kh = nn.transpose %k {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<10x8x16xf32>) -> tensor<8x10x16xf32>
  %vh = nn.permute %v {dims = array<i64: 1, 0, 2>} : (tensor<10x8x16xf32>) -> tensor<8x10x16xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %qs = nn.mul %qh, %c : (tensor<8x10x16xf32>, tensor<f32>) -> tensor<8x10x16xf32>
  %kt = nn.transpose %kh {dim0 = -2 : i64, dim1 = -1 : i64} : (tensor<8x10x16xf32>) -> tensor<8x16x10xf32>
  %s = nn.matmul %qs, %kt : (tensor<8x10x16xf32>, tensor<8x16x10xf32>) -> tensor<8x10x10xf32>
  %p = nn.softmax %s {dim = -1 : i64} : (tensor<8x10x10xf32>) -> tensor<8x10x10xf32>
  %o = nn.matmul %p, %vh : (tensor<8x10x10xf32>, tensor<8x10x16xf32>) -> tensor<8x10x16xf32>
  func.return %o : tensor<8x10x16xf32>
}

// CHECK-LABEL: func.func @eager_mha_scale_on_q
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.mul
// CHECK:         %qh = nn.transpose %q {dim0 = 0 : i64, dim1 = 1 : i64}
// CHECK:         %kh = nn.transpose %k {dim0 = 0 : i64, dim1 = 1 : i64}
// CHECK:         %vh = nn.permute %v
// CHECK:         %o = attn.sdpa %qh, %kh, %vh {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.mul

// -----

// Dropout between softmax and the value matmul (identity at inference) is dropped.

func.func @eager_dropout(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %ss {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %pd = nn.dropout %p {p = 0.1 : f64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %pd, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_dropout
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.dropout
// CHECK-NOT:     nn.matmul
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.dropout
// CHECK-NOT:     nn.matmul

// -----

// masked_fill(cond, finfo.min) = where(cond, fill, scores): the keep-mask is not(cond).

func.func @eager_masked_fill(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %pad: tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %fill = nn.constant dense<-3.40282347E+38> : tensor<f32>
  %sm = nn.where %pad, %fill, %ss : (tensor<2x1x1x8xi1>, tensor<f32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_masked_fill
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.where
// CHECK-NOT:     nn.matmul
// CHECK:         [[KEEP:%[0-9a-z_]+]] = nn.logical_not %pad : (tensor<2x1x1x8xi1>) -> tensor<2x1x1x8xi1>
// CHECK:         %o = attn.sdpa %q, %k, %v mask [[KEEP]] {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.where
// CHECK-NOT:     nn.matmul

// -----

// where(cond, scores, fill): cond itself is the keep-mask.

func.func @eager_where_keep(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %keep: tensor<1x1x8x8xi1>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<4.0> : tensor<f32>
  %ss = nn.div %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %fill = nn.full {value = -1.0e+09 : f64} : tensor<f32>
  %sm = nn.where %keep, %ss, %fill : (tensor<1x1x8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_where_keep
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.where
// CHECK-NOT:     nn.logical_not
// CHECK-NOT:     nn.matmul
// CHECK:         %o = attn.sdpa %q, %k, %v mask %keep {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.where
// CHECK-NOT:     nn.logical_not
// CHECK-NOT:     nn.matmul

// -----

// kT written as a permute swapping the last two dims.

func.func @eager_permute_kt(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.permute %k {dims = array<i64: 0, 1, 3, 2>} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %ss {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @eager_permute_kt
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.permute
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.softmax
// CHECK-NOT:     nn.matmul
// CHECK-NOT:     nn.permute

// -----

// A softmax over a linear output feeding a mul is not attention.

func.func @negative_softmax_not_attention(%x: tensor<2x8x16xf32>, %w: tensor<10x16xf32>, %b: tensor<10xf32>) -> tensor<2x8x10xf32> {
  %y = nn.linear %x, %w, %b : (tensor<2x8x16xf32>, tensor<10x16xf32>, tensor<10xf32>) -> tensor<2x8x10xf32>
  %p = nn.softmax %y {dim = -1 : i64} : (tensor<2x8x10xf32>) -> tensor<2x8x10xf32>
  %c = nn.constant dense<2.0> : tensor<f32>
  %o = nn.mul %p, %c : (tensor<2x8x10xf32>, tensor<f32>) -> tensor<2x8x10xf32>
  func.return %o : tensor<2x8x10xf32>
}

// CHECK-LABEL: func.func @negative_softmax_not_attention
// CHECK-NOT:     attn.sdpa
// CHECK:         %y = nn.linear %x, %w, %b
// CHECK:         %p = nn.softmax %y {dim = -1 : i64}
// CHECK:         %o = nn.mul %p, %c
// CHECK-NOT:     attn.sdpa

// -----

// A softmax over another dimension than the keys is not attention.

func.func @negative_softmax_dim1(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %s {dim = 1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_softmax_dim1
// CHECK-NOT:     attn.sdpa
// CHECK:         %s = nn.matmul %q, %kt
// CHECK:         %p = nn.softmax %s {dim = 1 : i64}
// CHECK:         %o = nn.matmul %p, %v
// CHECK-NOT:     attn.sdpa

// -----

// kT made by transposing dims 1, 2 does not form q.kT.

func.func @negative_wrong_transpose_dims(%q: tensor<2x4x8x16xf32>, %k: tensor<2x16x4x8xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<2x16x4x8xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %s {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_wrong_transpose_dims
// CHECK-NOT:     attn.sdpa
// CHECK:         %kt = nn.transpose %k {dim0 = 1 : i64, dim1 = 2 : i64}
// CHECK:         %s = nn.matmul %q, %kt
// CHECK:         %p = nn.softmax %s {dim = -1 : i64}
// CHECK:         %o = nn.matmul %p, %v
// CHECK-NOT:     attn.sdpa

// -----

// The attention probabilities have a second use (returned): left alone.

func.func @negative_probs_returned(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>) {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %s {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o, %p : tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>
}

// CHECK-LABEL: func.func @negative_probs_returned
// CHECK-NOT:     attn.sdpa
// CHECK:         %s = nn.matmul %q, %kt
// CHECK:         %p = nn.softmax %s {dim = -1 : i64}
// CHECK:         %o = nn.matmul %p, %v
// CHECK:         func.return %o, %p
// CHECK-NOT:     attn.sdpa

// -----

// A scale that is not a constant is not folded into attn.sdpa.

func.func @negative_scale_not_constant(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %t: tensor<f32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %ss = nn.mul %s, %t : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %ss {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_scale_not_constant
// CHECK-NOT:     attn.sdpa
// CHECK:         %ss = nn.mul %s, %t
// CHECK:         %p = nn.softmax %ss {dim = -1 : i64}
// CHECK:         %o = nn.matmul %p, %v
// CHECK-NOT:     attn.sdpa

// -----

// A fill that broadcasts the scores wider than q, k, v's batch would give attn.sdpa a result shape it cannot have.

func.func @negative_where_fill_widens_scores(%q: tensor<4x8x16xf32>, %k: tensor<4x8x16xf32>, %v: tensor<4x8x16xf32>, %keep: tensor<8x8xi1>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<4x8x16xf32>) -> tensor<4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<4x8x16xf32>, tensor<4x16x8xf32>) -> tensor<4x8x8xf32>
  %fill = nn.full {value = -1.0e+09 : f64} : tensor<2x1x1x1xf32>
  %sm = nn.where %keep, %s, %fill : (tensor<8x8xi1>, tensor<4x8x8xf32>, tensor<2x1x1x1xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_where_fill_widens_scores
// CHECK-NOT:     attn.sdpa
// CHECK:         %sm = nn.where %keep, %s, %fill
// CHECK:         %p = nn.softmax %sm {dim = -1 : i64}
// CHECK:         %o = nn.matmul %p, %v
// CHECK-NOT:     attn.sdpa

// -----

// Likewise an additive mask that widens the scores' batch.

func.func @negative_mask_widens_scores(%q: tensor<4x8x16xf32>, %k: tensor<4x8x16xf32>, %v: tensor<4x8x16xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<4x8x16xf32>) -> tensor<4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<4x8x16xf32>, tensor<4x16x8xf32>) -> tensor<4x8x8xf32>
  %sm = nn.add %s, %m : (tensor<4x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_mask_widens_scores
// CHECK-NOT:     attn.sdpa
// CHECK:         %sm = nn.add %s, %m
// CHECK:         %p = nn.softmax %sm {dim = -1 : i64}
// CHECK:         %o = nn.matmul %p, %v
// CHECK-NOT:     attn.sdpa

// -----

// Gemma-2 soft-capping, c·tanh(s/c) between the scale and the mask, becomes the softcap attribute.

func.func @soft_capped_scores(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %cap = nn.constant dense<50.0> : tensor<f32>
  %d = nn.div %ss, %cap : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %t = nn.tanh %d : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %capped = nn.mul %t, %cap : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %sm = nn.add %capped, %m : (tensor<2x4x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @soft_capped_scores
// CHECK-NOT:     nn.softmax
// CHECK:         %o = attn.sdpa %q, %k, %v mask %m {scale = 2.500000e-01 : f64, causal = false, softcap = 5.000000e+01 : f64}
// CHECK-NOT:     nn.tanh

// -----

// A tanh whose divisor and factor differ is not a soft-cap: nothing is raised.

func.func @negative_soft_cap_constants_differ(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %a = nn.constant dense<50.0> : tensor<f32>
  %b = nn.constant dense<30.0> : tensor<f32>
  %d = nn.div %s, %a : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %t = nn.tanh %d : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %capped = nn.mul %t, %b : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %capped {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_soft_cap_constants_differ
// CHECK-NOT:     attn.sdpa
// CHECK:         nn.tanh
// CHECK:         nn.softmax

// -----

// A relative-position bias and a padding mask (T5, MPNet): two additive terms become one mask.

func.func @bias_and_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %bias: tensor<1x4x8x8xf32>, %m: tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %sb = nn.add %s, %bias : (tensor<2x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %sm = nn.add %sb, %m : (tensor<2x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @bias_and_mask
// CHECK-NOT:     nn.softmax
// CHECK:         %[[MASK:.*]] = nn.add %bias, %m : (tensor<1x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
// CHECK-NEXT:    %o = attn.sdpa %q, %k, %v mask %[[MASK]] {scale = 1.000000e+00 : f64, causal = false}

// -----

// GPT-Neo: a masked fill with a buffer value, then an additive mask. The keep-mask of the fill and the
// where(keep, 0, min) of the additive mask are both keep-masks: one i1 mask, their `and`.

func.func @masked_fill_then_additive_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %causal: tensor<1x1x8x8xi1>, %pad: tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %min = nn.constant dense<-3.40282347e+38> : tensor<f32>
  %filled = nn.where %causal, %s, %min : (tensor<1x1x8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %zero = nn.constant dense<0.0> : tensor<f32>
  %m = nn.where %pad, %zero, %min : (tensor<2x1x1x8xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x8xf32>
  %sm = nn.add %filled, %m : (tensor<2x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @masked_fill_then_additive_mask
// CHECK-NOT:     nn.softmax
// CHECK:         %[[KEEP:.*]] = nn.logical_and %causal, %pad : (tensor<1x1x8x8xi1>, tensor<2x1x1x8xi1>) -> tensor<2x1x8x8xi1>
// CHECK-NEXT:    %o = attn.sdpa %q, %k, %v mask %[[KEEP]] {scale = 1.000000e+00 : f64, causal = false}

// -----

// A constant causal triangle (what the importer folds a decoder's position-built mask to) becomes
// causal = true, and the constant is dropped.

func.func @constant_causal_mask(%q: tensor<1x2x3x4xf32>, %k: tensor<1x2x3x4xf32>, %v: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  %tri = nn.constant dense<[[[[true, false, false], [true, true, false], [true, true, true]]]]> : tensor<1x1x3x3xi1>
  %o = nn.sdpa %q, %k, %v mask %tri {causal = false, dropout_p = 0.0 : f64} : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x1x3x3xi1>) -> tensor<1x2x3x4xf32>
  func.return %o : tensor<1x2x3x4xf32>
}

// CHECK-LABEL: func.func @constant_causal_mask
// CHECK-NOT:     nn.constant
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 5.000000e-01 : f64, causal = true}

// -----

// A constant band (a sliding window) is not causal: it stays the mask.

func.func @negative_constant_window_mask(%q: tensor<1x2x3x4xf32>, %k: tensor<1x2x3x4xf32>, %v: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  %band = nn.constant dense<[[[[true, false, false], [true, true, false], [false, true, true]]]]> : tensor<1x1x3x3xi1>
  %o = nn.sdpa %q, %k, %v mask %band {causal = false, dropout_p = 0.0 : f64} : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>, tensor<1x1x3x3xi1>) -> tensor<1x2x3x4xf32>
  func.return %o : tensor<1x2x3x4xf32>
}

// CHECK-LABEL: func.func @negative_constant_window_mask
// CHECK:         %o = attn.sdpa %q, %k, %v mask %band {scale = 5.000000e-01 : f64, causal = false}

// -----

// BLOOM: q·kᵀ on flattened (batch·heads) operands with ALiBi added there, reshaped to (batch, heads) for the
// mask and the softmax, flattened again for P·V. Raised on (batch, heads, ...) operands; the ALiBi term is
// broadcast and split like the scores; the result is flattened back.

func.func @flattened_heads_with_alibi(%q: tensor<8x8x16xf32>, %k: tensor<8x8x16xf32>, %v: tensor<8x8x16xf32>, %alibi: tensor<8x1x8xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<8x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<8x8x16xf32>) -> tensor<8x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<8x8x16xf32>, tensor<8x16x8xf32>) -> tensor<8x8x8xf32>
  %c = nn.constant dense<0.25> : tensor<f32>
  %ss = nn.mul %s, %c : (tensor<8x8x8xf32>, tensor<f32>) -> tensor<8x8x8xf32>
  %sa = nn.add %ss, %alibi : (tensor<8x8x8xf32>, tensor<8x1x8xf32>) -> tensor<8x8x8xf32>
  %s4 = nn.reshape %sa : (tensor<8x8x8xf32>) -> tensor<2x4x8x8xf32>
  %sm = nn.add %s4, %m : (tensor<2x4x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %sm {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p3 = nn.reshape %p : (tensor<2x4x8x8xf32>) -> tensor<8x8x8xf32>
  %o = nn.matmul %p3, %v : (tensor<8x8x8xf32>, tensor<8x8x16xf32>) -> tensor<8x8x16xf32>
  func.return %o : tensor<8x8x16xf32>
}

// CHECK-LABEL: func.func @flattened_heads_with_alibi
// CHECK-NOT:     nn.softmax
// CHECK-DAG:     %[[Q:.*]] = nn.reshape %q : (tensor<8x8x16xf32>) -> tensor<2x4x8x16xf32>
// CHECK-DAG:     %[[A:.*]] = nn.broadcast_to %alibi : (tensor<8x1x8xf32>) -> tensor<8x8x8xf32>
// CHECK-DAG:     %[[A4:.*]] = nn.reshape %[[A]] : (tensor<8x8x8xf32>) -> tensor<2x4x8x8xf32>
// CHECK:         %[[MASK:.*]] = nn.add %[[A4]], %m : (tensor<2x4x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x8xf32>
// CHECK-NEXT:    %[[O:.*]] = attn.sdpa %[[Q]], %{{.*}}, %{{.*}} mask %[[MASK]] {scale = 2.500000e-01 : f64, causal = false} : {{.*}} -> tensor<2x4x8x16xf32>
// CHECK-NEXT:    %o = nn.reshape %[[O]] : (tensor<2x4x8x16xf32>) -> tensor<8x8x16xf32>

// -----

// The scale on kᵀ (DeBERTa divides kᵀ by sqrt(d·scale_factor)).

func.func @scale_on_key(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32>
  %c = nn.constant dense<8.0> : tensor<f32>
  %kts = nn.div %kt, %c : (tensor<2x4x16x8xf32>, tensor<f32>) -> tensor<2x4x16x8xf32>
  %s = nn.matmul %q, %kts : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %p = nn.softmax %s {dim = -1 : i64} : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %o = nn.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @scale_on_key
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 1.250000e-01 : f64, causal = false}

// -----

// nn.MultiheadAttention's flat operands, x.view(L, B·H, hd).transpose(0, 1): the attention is raised on
// (batch, heads, length, head) operands so per-head passes see the heads, and flattened back.

func.func @multihead_flat_heads(%x: tensor<8x2x32xf32>) -> tensor<8x8x8xf32> {
  %view = nn.reshape %x : (tensor<8x2x32xf32>) -> tensor<8x8x8xf32>
  %q = nn.transpose %view {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<8x8x8xf32>) -> tensor<8x8x8xf32>
  %o = nn.sdpa %q, %q, %q {causal = false, dropout_p = 0.0 : f64} : (tensor<8x8x8xf32>, tensor<8x8x8xf32>, tensor<8x8x8xf32>) -> tensor<8x8x8xf32>
  func.return %o : tensor<8x8x8xf32>
}

// CHECK-LABEL: func.func @multihead_flat_heads
// CHECK:         %[[Q:.*]] = nn.reshape %q : (tensor<8x8x8xf32>) -> tensor<2x4x8x8xf32>
// CHECK:         %[[O:.*]] = attn.sdpa %[[Q]], %{{.*}}, %{{.*}} {scale = 0.3535533905932737{{[0-9]}} : f64, causal = false} : {{.*}} -> tensor<2x4x8x8xf32>
// CHECK-NEXT:    %o = nn.reshape %[[O]] : (tensor<2x4x8x8xf32>) -> tensor<8x8x8xf32>

