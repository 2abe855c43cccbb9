// RUN: attnc-opt %s -p attn-prune --split-input-file | filecheck %s
// RUN: attnc-opt %s -p attn-prune --split-input-file 2>&1 >/dev/null | filecheck --check-prefix=REMARK %s
// RUN: attnc-opt %s -p 'attn-prune{method=wanda sparsity=0.7}' --split-input-file | filecheck --check-prefix=WANDA %s
// RUN: attnc-opt %s -p 'attn-prune{method=sparsegpt granularity="2:4"}' --split-input-file | filecheck --check-prefix=SEMI %s
// RUN: attnc-opt %s -p 'attn-prune{method=magnitude layers="layer[.]9[.]"}' --split-input-file 2>&1 | filecheck --check-prefix=NOMATCH %s
// RUN: not attnc-opt %s -p 'attn-prune{sparsity=1.0}' 2>&1 | filecheck --check-prefix=BADSPARSITY %s
// RUN: not attnc-opt %s -p 'attn-prune{method=random}' 2>&1 | filecheck --check-prefix=BADMETHOD %s
// RUN: not attnc-opt %s -p 'attn-prune{granularity="2:4" sparsity=0.7}' 2>&1 | filecheck --check-prefix=BADSEMI %s
// RUN: echo 'func.func @f(%%x: tensor<2xf32>) -> tensor<2xf32> { func.return %%x : tensor<2xf32> }' | not attnc-opt -p attn-prune 2>&1 | filecheck --check-prefix=NOATTN %s

// Bad options are one error line and print no IR.
// BADSPARSITY-NOT: builtin.module
// BADSPARSITY:     attnc-opt: error: attn-prune: sparsity must be in [0, 1), got 1.0
// BADMETHOD:       attnc-opt: error: attn-prune: unknown method 'random' (known: learned, magnitude, wanda, sparsegpt)
// BADSEMI:         attnc-opt: error: attn-prune: granularity 2:4 prunes exactly half of each matrix; got sparsity=0.7
// NOATTN:          attnc-opt: error: attn-prune: the module has no softmax attention (attn.sdpa): run attn-raise first

// W_Q and W_K (found through the reshape and transpose to the heads) get the pruning record, pending until
// the driver computes the masks; W_V, the biases and the ops are left as they were.

func.func @encoder(%x: tensor<2x8x16xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<2x4x8x4xf32> {
  %wq = nn.param @layer.0.attn.query.weight : tensor<16x16xf32>
  %bq = nn.param @layer.0.attn.query.bias : tensor<16xf32>
  %q0 = nn.linear %x, %wq, %bq : (tensor<2x8x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %q1 = nn.reshape %q0 : (tensor<2x8x16xf32>) -> tensor<2x8x4x4xf32>
  %q = nn.transpose %q1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<2x8x4x4xf32>) -> tensor<2x4x8x4xf32>
  %wk = nn.param @layer.0.attn.key.weight : tensor<16x16xf32>
  %k0 = nn.linear %x, %wk : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %k1 = nn.reshape %k0 : (tensor<2x8x16xf32>) -> tensor<2x8x4x4xf32>
  %k = nn.transpose %k1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<2x8x4x4xf32>) -> tensor<2x4x8x4xf32>
  %wv = nn.param @layer.0.attn.value.weight : tensor<16x16xf32>
  %v0 = nn.linear %x, %wv : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %v1 = nn.reshape %v0 : (tensor<2x8x16xf32>) -> tensor<2x8x4x4xf32>
  %v = nn.transpose %v1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<2x8x4x4xf32>) -> tensor<2x4x8x4xf32>
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.5 : f64, causal = false} : (tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>, tensor<2x4x8x4xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x4xf32> loc("layer.0.attn")
  func.return %o : tensor<2x4x8x4xf32>
}

// CHECK-LABEL: func.func @encoder
// CHECK-NEXT:    %wq = nn.param @layer.0.attn.query.weight {attn.prune = {method = "learned", sparsity = 5.000000e-01 : f64, granularity = "unstructured", role = "query", status = "pending", relaxation = "ste", steps = 200 : i64, lr = 5.000000e-02 : f64, reg = 0.000000e+00 : f64, seed = 0 : i64}} : tensor<16x16xf32>
// CHECK-NEXT:    %bq = nn.param @layer.0.attn.query.bias : tensor<16xf32>
// CHECK:         %wk = nn.param @layer.0.attn.key.weight {attn.prune = {method = "learned", {{.*}}role = "key", status = "pending"{{.*}}}} : tensor<16x16xf32>
// CHECK:         %wv = nn.param @layer.0.attn.value.weight : tensor<16x16xf32>
// CHECK:         %o = attn.sdpa %q, %k, %v mask %m

// WANDA-LABEL: func.func @encoder
// WANDA:         nn.param @layer.0.attn.query.weight {attn.prune = {method = "wanda", sparsity = 7.000000e-01 : f64, granularity = "unstructured", role = "query", status = "pending"}}
// WANDA:         nn.param @layer.0.attn.key.weight {attn.prune = {method = "wanda", sparsity = 7.000000e-01 : f64, granularity = "unstructured", role = "key", status = "pending"}}
// WANDA-NOT:     nn.param @layer.0.attn.value.weight {attn.prune

// SEMI-LABEL: func.func @encoder
// SEMI:          nn.param @layer.0.attn.query.weight {attn.prune = {method = "sparsegpt", sparsity = 5.000000e-01 : f64, granularity = "2:4", role = "query", status = "pending"}}
// SEMI:          nn.param @layer.0.attn.key.weight {attn.prune = {method = "sparsegpt", sparsity = 5.000000e-01 : f64, granularity = "2:4", role = "key", status = "pending"}}

// A layers regex that matches no attention is a remark, not silence, and prunes nothing.
// NOMATCH-LABEL: func.func @encoder
// NOMATCH-NOT:   attn.prune
// NOMATCH:       remark: attn-prune: <unknown>: layers 'layer[.]9[.]' matches none of the 1 attentions: nothing pruned

// -----

// GQA: four query heads read two key heads through a broadcast; the one K matrix is marked once, and its
// mask is shared by the query heads that read it. Rotary embeddings' mul/add on the path are followed too.

func.func @gqa(%x: tensor<1x8x16xf32>, %cos: tensor<1x1x8x4xf32>) -> tensor<1x4x8x4xf32> {
  %wq = nn.param @layer.0.attn.q_proj.weight : tensor<16x16xf32>
  %q0 = nn.linear %x, %wq : (tensor<1x8x16xf32>, tensor<16x16xf32>) -> tensor<1x8x16xf32>
  %q1 = nn.reshape %q0 : (tensor<1x8x16xf32>) -> tensor<1x8x4x4xf32>
  %q2 = nn.transpose %q1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<1x8x4x4xf32>) -> tensor<1x4x8x4xf32>
  %q = nn.mul %q2, %cos : (tensor<1x4x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x4x8x4xf32>
  %wk = nn.param @layer.0.attn.k_proj.weight : tensor<8x16xf32>
  %k0 = nn.linear %x, %wk : (tensor<1x8x16xf32>, tensor<8x16xf32>) -> tensor<1x8x8xf32>
  %k1 = nn.reshape %k0 : (tensor<1x8x8xf32>) -> tensor<1x8x2x4xf32>
  %k2 = nn.transpose %k1 {dim0 = 1 : i64, dim1 = 2 : i64} : (tensor<1x8x2x4xf32>) -> tensor<1x2x8x4xf32>
  %k3 = nn.mul %k2, %cos : (tensor<1x2x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x2x8x4xf32>
  %k4 = nn.reshape %k3 : (tensor<1x2x8x4xf32>) -> tensor<1x2x1x8x4xf32>
  %k5 = nn.broadcast_to %k4 : (tensor<1x2x1x8x4xf32>) -> tensor<1x2x2x8x4xf32>
  %k = nn.reshape %k5 : (tensor<1x2x2x8x4xf32>) -> tensor<1x4x8x4xf32>
  %o = attn.sdpa %q, %k, %k {scale = 0.5 : f64, causal = true} : (tensor<1x4x8x4xf32>, tensor<1x4x8x4xf32>, tensor<1x4x8x4xf32>) -> tensor<1x4x8x4xf32> loc("layer.0.attn")
  func.return %o : tensor<1x4x8x4xf32>
}

// CHECK-LABEL: func.func @gqa
// CHECK:         nn.param @layer.0.attn.q_proj.weight {attn.prune = {{{.*}}role = "query"{{.*}}}} : tensor<16x16xf32>
// CHECK:         nn.param @layer.0.attn.k_proj.weight {attn.prune = {{{.*}}role = "key"{{.*}}}} : tensor<8x16xf32>

// -----

// Negative: a query that is not a projection of a parameter, and Q and K from one matrix, are left alone
// with a remark.

func.func @negative_not_projected(%q: tensor<1x2x4x4xf32>, %x: tensor<1x4x8xf32>) -> tensor<1x2x4x4xf32> {
  %wk = nn.param @layer.1.attn.key.weight : tensor<8x8xf32>
  %k0 = nn.linear %x, %wk : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  %k = nn.reshape %k0 : (tensor<1x4x8xf32>) -> tensor<1x2x4x4xf32>
  %o = attn.sdpa %q, %k, %k {scale = 0.5 : f64, causal = false} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc("layer.1.attn")
  func.return %o : tensor<1x2x4x4xf32>
}

func.func @negative_one_matrix(%x: tensor<1x4x8xf32>) -> tensor<1x2x4x4xf32> {
  %w = nn.param @layer.2.attn.qk.weight : tensor<8x8xf32>
  %y = nn.linear %x, %w : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  %h = nn.reshape %y : (tensor<1x4x8xf32>) -> tensor<1x2x4x4xf32>
  %o = attn.sdpa %h, %h, %h {scale = 0.5 : f64, causal = false} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc("layer.2.attn")
  func.return %o : tensor<1x2x4x4xf32>
}

// REMARK:      remark: attn-prune: layer.1.attn: the query is not a linear projection of a parameter: not pruned
// REMARK-NEXT: remark: attn-prune: layer.2.attn: query and key are projected by one matrix: not pruned
// REMARK-NOT:  remark
// CHECK-LABEL: func.func @negative_not_projected
// CHECK-NOT:     attn.prune
// CHECK-LABEL: func.func @negative_one_matrix
// CHECK-NOT:     attn.prune
// CHECK:         func.return
