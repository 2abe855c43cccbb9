// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s --print-debuginfo | attnc-opt --print-debuginfo | filecheck %s --check-prefix=LOC

// Round trip of every nn op in its custom form: parse, print, re-parse, print again; both prints must be
// identical (diff) and the second one is checked. Optional parts appear in both variants: nn.linear with
// and without bias, nn.layer_norm with and without `affine`, nn.sdpa with and without `mask` and `scale`,
// nn.clamp with min only, max only and both. The last RUN line checks that module-path locations survive a
// round trip with --print-debuginfo.

// CHECK-LABEL: func.func @sources(
func.func @sources() {
  %w = nn.param @encoder.layer.0.attention.self.query.weight : tensor<384x384xf32>
  // CHECK-NEXT: %w = nn.param @encoder.layer.0.attention.self.query.weight : tensor<384x384xf32>
  %m = nn.param @encoder.layer.0.attention.self.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<12xf32>
  // CHECK-NEXT: %m = nn.param @encoder.layer.0.attention.self.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<12xf32>
  %c = nn.constant dense<0.125> : tensor<f32>
  // CHECK-NEXT: %c = nn.constant dense<1.250000e-01> : tensor<f32>
  %ci = nn.constant dense<[0, 1, 2]> : tensor<3xi64>
  // CHECK-NEXT: %ci = nn.constant dense<[0, 1, 2]> : tensor<3xi64>
  %z = nn.full {value = 0.0 : f64} : tensor<2x3xf32>
  // CHECK-NEXT: %z = nn.full {value = 0.000000e+00 : f64} : tensor<2x3xf32>
  %r = nn.arange {start = 0.0 : f64, end = 9.0 : f64, step = 1.0 : f64} : tensor<9xi64>
  // CHECK-NEXT: %r = nn.arange {start = 0.000000e+00 : f64, end = 9.000000e+00 : f64, step = 1.000000e+00 : f64} : tensor<9xi64>
  %rn = nn.arange {start = 9.0 : f64, end = 0.0 : f64, step = -3.0 : f64} : tensor<3xi64>
  // CHECK-NEXT: %rn = nn.arange {start = 9.000000e+00 : f64, end = 0.000000e+00 : f64, step = -3.000000e+00 : f64} : tensor<3xi64>
  func.return
  // CHECK-NEXT: func.return
}

// CHECK-LABEL: func.func @unary(
func.func @unary(%x: tensor<4xf32>, %m: tensor<4xi1>, %i: tensor<2x9xi64>) {
  %neg = nn.neg %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %neg = nn.neg %x : (tensor<4xf32>) -> tensor<4xf32>
  %exp = nn.exp %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %exp = nn.exp %x : (tensor<4xf32>) -> tensor<4xf32>
  %sqrt = nn.sqrt %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %sqrt = nn.sqrt %x : (tensor<4xf32>) -> tensor<4xf32>
  %rsqrt = nn.rsqrt %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %rsqrt = nn.rsqrt %x : (tensor<4xf32>) -> tensor<4xf32>
  %tanh = nn.tanh %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %tanh = nn.tanh %x : (tensor<4xf32>) -> tensor<4xf32>
  %sigmoid = nn.sigmoid %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %sigmoid = nn.sigmoid %x : (tensor<4xf32>) -> tensor<4xf32>
  %relu = nn.relu %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %relu = nn.relu %x : (tensor<4xf32>) -> tensor<4xf32>
  %silu = nn.silu %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %silu = nn.silu %x : (tensor<4xf32>) -> tensor<4xf32>
  %cos = nn.cos %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %cos = nn.cos %x : (tensor<4xf32>) -> tensor<4xf32>
  %sin = nn.sin %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %sin = nn.sin %x : (tensor<4xf32>) -> tensor<4xf32>
  %not = nn.logical_not %m : (tensor<4xi1>) -> tensor<4xi1>
  // CHECK-NEXT: %not = nn.logical_not %m : (tensor<4xi1>) -> tensor<4xi1>
  %gelu = nn.gelu %x {approximate = "none"} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %gelu = nn.gelu %x {approximate = "none"} : (tensor<4xf32>) -> tensor<4xf32>
  %gelu_tanh = nn.gelu %x {approximate = "tanh"} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %gelu_tanh = nn.gelu %x {approximate = "tanh"} : (tensor<4xf32>) -> tensor<4xf32>
  %drop = nn.dropout %x {p = 0.1 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %drop = nn.dropout %x {p = 1.000000e-01 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  %clamp_min = nn.clamp %x {min = 1.0e-09 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %clamp_min = nn.clamp %x {min = 1.000000e-09 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  %clamp_max = nn.clamp %x {max = 6.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %clamp_max = nn.clamp %x {max = 6.000000e+00 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  %clamp_both = nn.clamp %x {min = -1.0 : f64, max = 1.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %clamp_both = nn.clamp %x {min = -1.000000e+00 : f64, max = 1.000000e+00 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  %cast = nn.cast %i : (tensor<2x9xi64>) -> tensor<2x9xf32>
  // CHECK-NEXT: %cast = nn.cast %i : (tensor<2x9xi64>) -> tensor<2x9xf32>
  func.return
  // CHECK-NEXT: func.return
}

// CHECK-LABEL: func.func @binary(
func.func @binary(%a: tensor<2x4xf32>, %b: tensor<4xf32>, %s: tensor<f32>, %p: tensor<4xi1>, %q: tensor<4xi1>, %n: tensor<4xi64>, %k: tensor<i64>, %cond: tensor<2x1x1x9xi1>) {
  %add = nn.add %a, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %add = nn.add %a, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %sub = nn.sub %a, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %sub = nn.sub %a, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %mul = nn.mul %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %mul = nn.mul %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %div = nn.div %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %div = nn.div %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %pow = nn.pow %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %pow = nn.pow %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %max = nn.maximum %b, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %max = nn.maximum %b, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %min = nn.minimum %b, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %min = nn.minimum %b, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %and = nn.logical_and %p, %q : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  // CHECK-NEXT: %and = nn.logical_and %p, %q : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  %bool_add = nn.add %p, %q : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  // CHECK-NEXT: %bool_add = nn.add %p, %q : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xi1>
  %eq = nn.eq %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  // CHECK-NEXT: %eq = nn.eq %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  %ne = nn.ne %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  // CHECK-NEXT: %ne = nn.ne %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  %ge = nn.ge %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  // CHECK-NEXT: %ge = nn.ge %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  %gt = nn.gt %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  // CHECK-NEXT: %gt = nn.gt %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  %le = nn.le %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  // CHECK-NEXT: %le = nn.le %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  %lt = nn.lt %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  // CHECK-NEXT: %lt = nn.lt %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi1>
  %where = nn.where %cond, %s, %s : (tensor<2x1x1x9xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x9xf32>
  // CHECK-NEXT: %where = nn.where %cond, %s, %s : (tensor<2x1x1x9xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x9xf32>
  // With a scalar condition and lhs, the result takes the shape of rhs.
  %cs = nn.constant dense<true> : tensor<i1>
  // CHECK-NEXT: %cs = nn.constant dense<true> : tensor<i1>
  %where_rhs = nn.where %cs, %s, %b : (tensor<i1>, tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %where_rhs = nn.where %cs, %s, %b : (tensor<i1>, tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  func.return
  // CHECK-NEXT: func.return
}

// CHECK-LABEL: func.func @linalg(
func.func @linalg(%h: tensor<2x9x384xf32>, %w: tensor<1536x384xf32>, %bias: tensor<1536xf32>, %ids: tensor<2x9xi64>, %table: tensor<30522x384xf32>, %g: tensor<384xf32>, %beta: tensor<384xf32>) {
  %lin = nn.linear %h, %w, %bias : (tensor<2x9x384xf32>, tensor<1536x384xf32>, tensor<1536xf32>) -> tensor<2x9x1536xf32>
  // CHECK-NEXT: %lin = nn.linear %h, %w, %bias : (tensor<2x9x384xf32>, tensor<1536x384xf32>, tensor<1536xf32>) -> tensor<2x9x1536xf32>
  %lin_nobias = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<1536x384xf32>) -> tensor<2x9x1536xf32>
  // CHECK-NEXT: %lin_nobias = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<1536x384xf32>) -> tensor<2x9x1536xf32>
  %emb = nn.embedding %table, %ids : (tensor<30522x384xf32>, tensor<2x9xi64>) -> tensor<2x9x384xf32>
  // CHECK-NEXT: %emb = nn.embedding %table, %ids : (tensor<30522x384xf32>, tensor<2x9xi64>) -> tensor<2x9x384xf32>
  %ln = nn.layer_norm %h affine %g, %beta {normalized_shape = array<i64: 384>, eps = 1.0e-12 : f64} : (tensor<2x9x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
  // CHECK-NEXT: %ln = nn.layer_norm %h affine %g, %beta {normalized_shape = array<i64: 384>, eps = 1.000000e-12 : f64} : (tensor<2x9x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
  %ln_plain = nn.layer_norm %h {normalized_shape = array<i64: 9, 384>, eps = 1.0e-05 : f64} : (tensor<2x9x384xf32>) -> tensor<2x9x384xf32>
  // CHECK-NEXT: %ln_plain = nn.layer_norm %h {normalized_shape = array<i64: 9, 384>, eps = 1.000000e-05 : f64} : (tensor<2x9x384xf32>) -> tensor<2x9x384xf32>
  func.return
  // CHECK-NEXT: func.return
}

// CHECK-LABEL: func.func @attention(
func.func @attention(%q: tensor<2x12x9x32xf32>, %kt: tensor<2x12x32x9xf32>, %k: tensor<2x12x9x32xf32>, %v: tensor<2x12x9x32xf32>, %bm: tensor<2x1x9x9xi1>, %fm: tensor<2x1x1x9xf32>) {
  %scores = nn.matmul %q, %kt : (tensor<2x12x9x32xf32>, tensor<2x12x32x9xf32>) -> tensor<2x12x9x9xf32>
  // CHECK-NEXT: %scores = nn.matmul %q, %kt : (tensor<2x12x9x32xf32>, tensor<2x12x32x9xf32>) -> tensor<2x12x9x9xf32>
  %probs = nn.softmax %scores {dim = -1 : i64} : (tensor<2x12x9x9xf32>) -> tensor<2x12x9x9xf32>
  // CHECK-NEXT: %probs = nn.softmax %scores {dim = -1 : i64} : (tensor<2x12x9x9xf32>) -> tensor<2x12x9x9xf32>
  %o = nn.sdpa %q, %k, %v {causal = false, dropout_p = 0.0 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT: %o = nn.sdpa %q, %k, %v {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32>
  %o_bool = nn.sdpa %q, %k, %v mask %bm {causal = false, dropout_p = 0.0 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xi1>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT: %o_bool = nn.sdpa %q, %k, %v mask %bm {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x9x9xi1>) -> tensor<2x12x9x32xf32>
  %o_float = nn.sdpa %q, %k, %v mask %fm {scale = 0.125 : f64, causal = false, dropout_p = 0.1 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x1x9xf32>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT: %o_float = nn.sdpa %q, %k, %v mask %fm {scale = 1.250000e-01 : f64, causal = false, dropout_p = 1.000000e-01 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x1x1x9xf32>) -> tensor<2x12x9x32xf32>
  %o_causal = nn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = true, dropout_p = 0.0 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT: %o_causal = nn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = true, dropout_p = 0.000000e+00 : f64} : (tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x32xf32>
  func.return
  // CHECK-NEXT: func.return
}

// CHECK-LABEL: func.func @shapes(
func.func @shapes(%x: tensor<2x9x384xf32>, %k: tensor<2x12x9x32xf32>, %y: tensor<2x9x12x32xf32>, %e: tensor<1x9xi64>, %pos: tensor<1x512xi64>, %t: tensor<3x17x64xf32>, %cls: tensor<3x1x64xf32>, %tok: tensor<3x16x64xf32>, %m: tensor<2x9xi1>, %bi: tensor<2x1x1x1xi64>, %ji: tensor<1x1x1x9xi64>, %c: tensor<2x9xi64>) {
  %rs = nn.reshape %x : (tensor<2x9x384xf32>) -> tensor<2x9x12x32xf32>
  // CHECK-NEXT: %rs = nn.reshape %x : (tensor<2x9x384xf32>) -> tensor<2x9x12x32xf32>
  %tr = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x12x32x9xf32>
  // CHECK-NEXT: %tr = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x12x32x9xf32>
  %tr_neg = nn.transpose %k {dim0 = -1 : i64, dim1 = -2 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x12x32x9xf32>
  // CHECK-NEXT: %tr_neg = nn.transpose %k {dim0 = -1 : i64, dim1 = -2 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x12x32x9xf32>
  %pm = nn.permute %y {dims = array<i64: 0, 2, 1, 3>} : (tensor<2x9x12x32xf32>) -> tensor<2x12x9x32xf32>
  // CHECK-NEXT: %pm = nn.permute %y {dims = array<i64: 0, 2, 1, 3>} : (tensor<2x9x12x32xf32>) -> tensor<2x12x9x32xf32>
  %bc = nn.broadcast_to %e : (tensor<1x9xi64>) -> tensor<2x9xi64>
  // CHECK-NEXT: %bc = nn.broadcast_to %e : (tensor<1x9xi64>) -> tensor<2x9xi64>
  %sl = nn.slice %pos {dim = 1 : i64, start = 0 : i64, end = 9 : i64, step = 1 : i64} : (tensor<1x512xi64>) -> tensor<1x9xi64>
  // CHECK-NEXT: %sl = nn.slice %pos {dim = 1 : i64, start = 0 : i64, end = 9 : i64, step = 1 : i64} : (tensor<1x512xi64>) -> tensor<1x9xi64>
  %sl_step = nn.slice %pos {dim = -1 : i64, start = 1 : i64, end = 10 : i64, step = 4 : i64} : (tensor<1x512xi64>) -> tensor<1x3xi64>
  // CHECK-NEXT: %sl_step = nn.slice %pos {dim = -1 : i64, start = 1 : i64, end = 10 : i64, step = 4 : i64} : (tensor<1x512xi64>) -> tensor<1x3xi64>
  %se = nn.select %t {dim = 1 : i64, index = 0 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>
  // CHECK-NEXT: %se = nn.select %t {dim = 1 : i64, index = 0 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>
  %se_neg = nn.select %t {dim = 1 : i64, index = -1 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>
  // CHECK-NEXT: %se_neg = nn.select %t {dim = 1 : i64, index = -1 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>
  %cat = nn.concat %cls, %tok {dim = 1 : i64} : (tensor<3x1x64xf32>, tensor<3x16x64xf32>) -> tensor<3x17x64xf32>
  // CHECK-NEXT: %cat = nn.concat %cls, %tok {dim = 1 : i64} : (tensor<3x1x64xf32>, tensor<3x16x64xf32>) -> tensor<3x17x64xf32>
  %ga = nn.gather %pos, %e {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x9xi64>
  // CHECK-NEXT: %ga = nn.gather %pos, %e {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x9xi64>
  %ix = nn.index %m[%bi, %ji] {dims = array<i64: 0, 1>} : (tensor<2x9xi1>, tensor<2x1x1x1xi64>, tensor<1x1x1x9xi64>) -> tensor<2x1x1x9xi1>
  // CHECK-NEXT: %ix = nn.index %m[%bi, %ji] {dims = array<i64: 0, 1>} : (tensor<2x9xi1>, tensor<2x1x1x1xi64>, tensor<1x1x1x9xi64>) -> tensor<2x1x1x9xi1>
  %sum = nn.reduce_sum %x {dims = array<i64: 1>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<2x384xf32>
  // CHECK-NEXT: %sum = nn.reduce_sum %x {dims = array<i64: 1>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<2x384xf32>
  %sum_all = nn.reduce_sum %x {dims = array<i64>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<f32>
  // CHECK-NEXT: %sum_all = nn.reduce_sum %x {dims = array<i64>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<f32>
  %mean = nn.reduce_mean %x {dims = array<i64: -1>, keepdim = true} : (tensor<2x9x384xf32>) -> tensor<2x9x1xf32>
  // CHECK-NEXT: %mean = nn.reduce_mean %x {dims = array<i64: -1>, keepdim = true} : (tensor<2x9x384xf32>) -> tensor<2x9x1xf32>
  %norm = nn.vector_norm %x {ord = 2.0 : f64, dims = array<i64: 2>, keepdim = true} : (tensor<2x9x384xf32>) -> tensor<2x9x1xf32>
  // CHECK-NEXT: %norm = nn.vector_norm %x {ord = 2.000000e+00 : f64, dims = array<i64: 2>, keepdim = true} : (tensor<2x9x384xf32>) -> tensor<2x9x1xf32>
  %cum = nn.cumsum %c {dim = -1 : i64} : (tensor<2x9xi64>) -> tensor<2x9xi64>
  // CHECK-NEXT: %cum = nn.cumsum %c {dim = -1 : i64} : (tensor<2x9xi64>) -> tensor<2x9xi64>
  func.return
  // CHECK-NEXT: func.return
}

// A rank-0 tensor accepts dims 0 and -1, as in PyTorch; the transpose is the identity.
// CHECK-LABEL: func.func @scalar_transpose(
func.func @scalar_transpose(%s: tensor<f32>) {
  %tr = nn.transpose %s {dim0 = 0 : i64, dim1 = -1 : i64} : (tensor<f32>) -> tensor<f32>
  // CHECK-NEXT: %tr = nn.transpose %s {dim0 = 0 : i64, dim1 = -1 : i64} : (tensor<f32>) -> tensor<f32>
  func.return
  // CHECK-NEXT: func.return
}

// The ops mainstream architectures need beyond the core set: relative-position buckets (abs, sign, log,
// floor/ceil), GELU's erf, patch embeddings and audio front ends (nn.conv with and without bias), window
// padding (nn.pad), ALiBi and rotary interleaving (nn.repeat, nn.repeat_interleave).
// CHECK-LABEL: func.func @zoo(
func.func @zoo(%x: tensor<4xf32>, %n: tensor<4xi64>, %img: tensor<2x3x16x16xf32>, %w: tensor<32x3x4x4xf32>, %b: tensor<32xf32>, %au: tensor<2x8x16xf32>, %w1: tensor<32x8x3xf32>, %win: tensor<1x5x5x8xf32>, %t: tensor<4x3xf32>) {
  %abs = nn.abs %n : (tensor<4xi64>) -> tensor<4xi64>
  // CHECK-NEXT: %abs = nn.abs %n : (tensor<4xi64>) -> tensor<4xi64>
  %sign = nn.sign %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %sign = nn.sign %x : (tensor<4xf32>) -> tensor<4xf32>
  %log = nn.log %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %log = nn.log %x : (tensor<4xf32>) -> tensor<4xf32>
  %ceil = nn.ceil %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %ceil = nn.ceil %x : (tensor<4xf32>) -> tensor<4xf32>
  %floor = nn.floor %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %floor = nn.floor %x : (tensor<4xf32>) -> tensor<4xf32>
  %erf = nn.erf %x : (tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: %erf = nn.erf %x : (tensor<4xf32>) -> tensor<4xf32>
  %patches = nn.conv %img, %w, %b {stride = array<i64: 4, 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x16x16xf32>, tensor<32x3x4x4xf32>, tensor<32xf32>) -> tensor<2x32x4x4xf32>
  // CHECK-NEXT: %patches = nn.conv %img, %w, %b {stride = array<i64: 4, 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x16x16xf32>, tensor<32x3x4x4xf32>, tensor<32xf32>) -> tensor<2x32x4x4xf32>
  %audio = nn.conv %au, %w1 {stride = array<i64: 2>, padding = array<i64: 1>, dilation = array<i64: 1>, groups = 1 : i64} : (tensor<2x8x16xf32>, tensor<32x8x3xf32>) -> tensor<2x32x8xf32>
  // CHECK-NEXT: %audio = nn.conv %au, %w1 {stride = array<i64: 2>, padding = array<i64: 1>, dilation = array<i64: 1>, groups = 1 : i64} : (tensor<2x8x16xf32>, tensor<32x8x3xf32>) -> tensor<2x32x8xf32>
  %padded = nn.pad %win {pads = array<i64: 0, 0, 1, 2>, value = 0.0 : f64} : (tensor<1x5x5x8xf32>) -> tensor<1x5x8x8xf32>
  // CHECK-NEXT: %padded = nn.pad %win {pads = array<i64: 0, 0, 1, 2>, value = 0.000000e+00 : f64} : (tensor<1x5x5x8xf32>) -> tensor<1x5x8x8xf32>
  %tiled = nn.repeat %t {repeats = array<i64: 2, 2, 1>} : (tensor<4x3xf32>) -> tensor<2x8x3xf32>
  // CHECK-NEXT: %tiled = nn.repeat %t {repeats = array<i64: 2, 2, 1>} : (tensor<4x3xf32>) -> tensor<2x8x3xf32>
  %inter = nn.repeat_interleave %t {repeats = 2 : i64, dim = 1 : i64} : (tensor<4x3xf32>) -> tensor<4x6xf32>
  // CHECK-NEXT: %inter = nn.repeat_interleave %t {repeats = 2 : i64, dim = 1 : i64} : (tensor<4x3xf32>) -> tensor<4x6xf32>
  func.return
  // CHECK-NEXT: func.return
}

// Module paths as locations: printed only with --print-debuginfo, and kept per op through a round trip.
// CHECK-LABEL: func.func @locations(
// LOC-LABEL: func.func @locations(
func.func @locations(%h: tensor<2x9x384xf32>, %w: tensor<384x384xf32>) {
  %q = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<384x384xf32>) -> tensor<2x9x384xf32> loc("encoder.layer.0.attention.self")
  // CHECK-NEXT: %q = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<384x384xf32>) -> tensor<2x9x384xf32>{{$}}
  // LOC-NEXT:   %q = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<384x384xf32>) -> tensor<2x9x384xf32> loc("encoder.layer.0.attention.self")
  %k = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<384x384xf32>) -> tensor<2x9x384xf32> loc("encoder.layer.1.attention.self")
  // CHECK-NEXT: %k = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<384x384xf32>) -> tensor<2x9x384xf32>{{$}}
  // LOC-NEXT:   %k = nn.linear %h, %w : (tensor<2x9x384xf32>, tensor<384x384xf32>) -> tensor<2x9x384xf32> loc("encoder.layer.1.attention.self")
  func.return
  // CHECK-NEXT: func.return
  // LOC-NEXT:   func.return loc(unknown)
}
