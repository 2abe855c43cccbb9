// RUN: attnc-opt %s -p 'training-step{lr=0.1 momentum=0.9}' --split-input-file --print-debuginfo | filecheck %s
// RUN: attnc-opt %s -p 'training-step{lr=0.5}' --split-input-file | filecheck --check-prefix=PLAIN %s
// RUN: not attnc-opt %s -p 'training-step{momentum=1.0}' --split-input-file 2>&1 | filecheck --check-prefix=BADMOMENTUM %s
// RUN: not attnc-opt %s -p 'training-step{lr=0.0}' --split-input-file 2>&1 | filecheck --check-prefix=BADLR %s
// RUN: echo 'func.func @main(%%x: tensor<4x3xf32>) -> tensor<4x3xf32> { %%s = nn.param @shift : tensor<3xf32> loc("rotary") %%c = nn.cos %%s : (tensor<3xf32>) -> tensor<3xf32> loc("rotary") %%y = nn.add %%x, %%c : (tensor<4x3xf32>, tensor<3xf32>) -> tensor<4x3xf32> func.return %%y : tensor<4x3xf32> }' | not attnc-opt -p training-step 2>&1 | filecheck --check-prefix=NORULE %s
// RUN: echo 'func.func @main(%%x: tensor<4x3xf32>) -> tensor<4x3xf32> { func.return %%x : tensor<4x3xf32> }' | not attnc-opt -p training-step 2>&1 | filecheck --check-prefix=NOPARAM %s

// Bad options are one error line, no IR.
// BADMOMENTUM-NOT: builtin.module
// BADMOMENTUM: attnc-opt: error: training-step: momentum must be in [0, 1), got 1.0
// BADLR: attnc-opt: error: training-step: lr must be positive, got 0.0

// negative_: an op with no backward rule between a parameter and the loss fails, naming the op and its module
// path; a program with no parameter on the path to the loss has nothing to train.
// NORULE: attnc-opt: error: training-step: at 'rotary': nn.cos has no backward rule: it cannot be on the path to the loss
// NOPARAM: attnc-opt: error: training-step: no float parameter reaches the loss: nothing to train

// A linear: the loss and its seed, then the input gradient (dy W) and the weight gradient (dyᵀ x) as two
// nn.matmul marked with their phase, the bias gradient a reduction; one grad.sgd per parameter with a zero-initialised velocity;
// @main takes the labels and returns the loss, the new parameters and the new velocities (attnc.updates).
func.func @main(%lin_x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %s = nn.param @shift : tensor<8xf32> loc("shift")
  %h = nn.add %lin_x, %s : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> loc("shift")
  %w = nn.param @fc.weight : tensor<3x8xf32> loc("fc")
  %b = nn.param @fc.bias : tensor<3xf32> loc("fc")
  %y = nn.linear %h, %w, %b : (tensor<4x8xf32>, tensor<3x8xf32>, tensor<3xf32>) -> tensor<4x3xf32> loc("fc")
  func.return %y : tensor<4x3xf32>
}
// CHECK-LABEL: builtin.module attributes {attnc.updates = ["shift", "fc.weight", "fc.bias", "shift.momentum", "fc.weight.momentum", "fc.bias.momentum"]}
// CHECK:       func.func @main(%lin_x: tensor<4x8xf32> {{.*}}, %labels: tensor<4xi64> {{.*}}) -> (tensor<f32>, tensor<8xf32>, tensor<3x8xf32>, tensor<3xf32>, tensor<8xf32>, tensor<3x8xf32>, tensor<3xf32>)
// CHECK:       %[[LOSS:.*]] = grad.cross_entropy %y, %labels : (tensor<4x3xf32>, tensor<4xi64>) -> tensor<f32>
// CHECK-NEXT:  %[[DY:.*]] = grad.cross_entropy_backward %y, %labels
// CHECK-NEXT:  %[[DX:.*]] = nn.matmul %[[DY]], %w {phase = "input-gradient"} : (tensor<4x3xf32>, tensor<3x8xf32>) -> tensor<4x8xf32> loc("fc")
// CHECK-NEXT:  %[[DYT:.*]] = nn.transpose %[[DY]] {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<4x3xf32>) -> tensor<3x4xf32> loc("fc")
// CHECK-NEXT:  %[[DW:.*]] = nn.matmul %[[DYT]], %h {phase = "weight-gradient"} : (tensor<3x4xf32>, tensor<4x8xf32>) -> tensor<3x8xf32> loc("fc")
// CHECK-NEXT:  nn.reduce_sum %[[DY]] {dims = array<i64: 0>, keepdim = true}
// CHECK:       nn.reduce_sum %[[DX]] {dims = array<i64: 0>, keepdim = true} {{.*}} loc("shift")
// CHECK:       %[[V:.*]] = nn.param @fc.weight.momentum {init = 0.000000e+00 : f64} : tensor<3x8xf32> loc("fc")
// CHECK-NEXT:  %[[W1:.*]], %[[V1:.*]] = grad.sgd %w, %[[DW]] velocity %[[V]] {lr = 1.000000e-01 : f64, momentum = 9.000000e-01 : f64}
// CHECK:       func.return %[[LOSS]], {{.*}} : tensor<f32>, tensor<8xf32>, tensor<3x8xf32>, tensor<3xf32>, tensor<8xf32>, tensor<3x8xf32>, tensor<3xf32>

// Without momentum: no velocity parameters, p' = p - lr g.
// PLAIN-LABEL: builtin.module attributes {attnc.updates = ["shift", "fc.weight", "fc.bias"]}
// PLAIN-NOT:   .momentum
// PLAIN:       grad.sgd %w, %{{.*}} {lr = 5.000000e-01 : f64, momentum = 0.000000e+00 : f64} : (tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<3x8xf32>

// -----

// Layer norm and GELU: grad.gelu_backward from the GELU input, grad.layer_norm_backward with the affine
// weight; the weight gradient is sum(dy · x̂) with x̂ the layer norm without affine, the bias gradient sum(dy).
func.func @main(%ln_x: tensor<2x5x8xf32>) -> tensor<2x5x8xf32> {
  %s = nn.param @shift : tensor<8xf32> loc("shift")
  %h = nn.add %ln_x, %s : (tensor<2x5x8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32> loc("shift")
  %g = nn.param @norm.weight : tensor<8xf32> loc("norm")
  %b = nn.param @norm.bias : tensor<8xf32> loc("norm")
  %y = nn.layer_norm %h affine %g, %b {normalized_shape = array<i64: 8>, eps = 1.0e-05 : f64} : (tensor<2x5x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32> loc("norm")
  %z = nn.gelu %y {approximate = "tanh"} : (tensor<2x5x8xf32>) -> tensor<2x5x8xf32> loc("act")
  %r = nn.relu %z : (tensor<2x5x8xf32>) -> tensor<2x5x8xf32> loc("act2")
  func.return %r : tensor<2x5x8xf32>
}
// CHECK-LABEL: builtin.module attributes {attnc.updates = ["shift", "norm.weight", "norm.bias",
// CHECK:       %[[DR:.*]] = grad.cross_entropy_backward %r, %labels
// CHECK-NEXT:  %[[DZ:.*]] = grad.relu_backward %z, %[[DR]] : {{.*}} loc("act2")
// CHECK-NEXT:  %[[DY:.*]] = grad.gelu_backward %y, %[[DZ]] {approximate = "tanh"} : {{.*}} loc("act")
// CHECK-NEXT:  grad.layer_norm_backward %h, %[[DY]] weight %g {normalized_shape = array<i64: 8>, eps = 1.000000e-05 : f64} {{.*}} loc("norm")
// CHECK-NEXT:  %[[XHAT:.*]] = nn.layer_norm %h {normalized_shape = array<i64: 8>, eps = 1.000000e-05 : f64} {{.*}} loc("norm")
// CHECK-NEXT:  nn.mul %[[DY]], %[[XHAT]]

// -----

// attn.sdpa: P is recomputed with attn.softmax (same scale, mask); dV = Pᵀ dO, dP = dO Vᵀ, then
// grad.softmax_backward and the scale, dQ = dS K, dK = dSᵀ Q: every GEMM an nn.matmul.
func.func @main(%att_x: tensor<1x2x4x8xf32>, %mask: tensor<1x1x4x4xi1>) -> tensor<1x2x4x8xf32> {
  %s = nn.param @shift : tensor<8xf32> loc("shift")
  %h = nn.add %att_x, %s : (tensor<1x2x4x8xf32>, tensor<8xf32>) -> tensor<1x2x4x8xf32> loc("shift")
  %o = attn.sdpa %h, %h, %h mask %mask {scale = 0.5 : f64, causal = false} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x1x4x4xi1>) -> tensor<1x2x4x8xf32> loc("attn")
  func.return %o : tensor<1x2x4x8xf32>
}
// CHECK-LABEL: func.func @main(%att_x
// CHECK:       %[[DO:.*]] = grad.cross_entropy_backward %o, %labels
// CHECK-NEXT:  %[[KT:.*]] = nn.transpose %h {dim0 = 2 : i64, dim1 = 3 : i64} {{.*}} loc("attn")
// CHECK-NEXT:  %[[S:.*]] = nn.matmul %h, %[[KT]] {phase = "forward"} : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32> loc("attn")
// CHECK-NEXT:  %[[P:.*]] = attn.softmax %[[S]] mask %mask {scale = 5.000000e-01 : f64, causal = false} {{.*}} loc("attn")
// CHECK-NEXT:  %[[PT:.*]] = nn.transpose %[[P]]
// CHECK-NEXT:  nn.matmul %[[PT]], %[[DO]] {phase = "input-gradient"} : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> loc("attn")
// CHECK-NEXT:  %[[VT:.*]] = nn.transpose %h
// CHECK-NEXT:  %[[DP:.*]] = nn.matmul %[[DO]], %[[VT]] {phase = "input-gradient"} : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
// CHECK-NEXT:  %[[DS:.*]] = grad.softmax_backward %[[P]], %[[DP]] {dim = -1 : i64}
// CHECK-NEXT:  %[[SCALE:.*]] = nn.full {value = 5.000000e-01 : f64} : tensor<f32>
// CHECK-NEXT:  %[[DSS:.*]] = nn.mul %[[DS]], %[[SCALE]]
// CHECK-NEXT:  nn.matmul %[[DSS]], %h
// CHECK:       %[[DST:.*]] = nn.transpose %[[DSS]]
// CHECK-NEXT:  nn.matmul %[[DST]], %h

// -----

// attn.cosine: one grad.cosine_backward gives the gradients of q, k, v and the per-head m.
func.func @main(%cos_x: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %s = nn.param @shift : tensor<8xf32> loc("shift")
  %h = nn.add %cos_x, %s : (tensor<1x2x4x8xf32>, tensor<8xf32>) -> tensor<1x2x4x8xf32> loc("shift")
  %m = nn.param @attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<2xf32> loc("attn")
  %o = attn.cosine %h, %h, %h, %m {causal = false, form = "chunked"} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2xf32>) -> tensor<1x2x4x8xf32> loc("attn")
  func.return %o : tensor<1x2x4x8xf32>
}
// CHECK-LABEL: builtin.module attributes {attnc.updates = ["shift", "attn.cosine_m",
// CHECK:       %[[DO:.*]] = grad.cross_entropy_backward %o, %labels
// CHECK-NEXT:  %{{.*}}, %{{.*}}, %{{.*}}, %[[DM:.*]] = grad.cosine_backward %h, %h, %h, %m, %[[DO]] {causal = false, form = "chunked"} : {{.*}} -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2xf32>) loc("attn")
// CHECK:       grad.sgd %m, %[[DM]]

// -----

// Embedding, shape ops and a matmul: the table gradient is grad.embedding_backward; reshape, permute,
// select, slice, concat and broadcast_to have their inverse (reshape, the inverse permutation, nn.pad,
// nn.slice, a reduction); a matmul's operand gradients are dy Bᵀ and Aᵀ dy.
func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x6xf32> {
  %t = nn.param @embed.weight : tensor<10x6xf32> loc("embed")
  %e = nn.embedding %t, %ids : (tensor<10x6xf32>, tensor<2x4xi64>) -> tensor<2x4x6xf32> loc("embed")
  %c = nn.param @cls : tensor<1x1x6xf32> loc("cls")
  %cb = nn.broadcast_to %c : (tensor<1x1x6xf32>) -> tensor<2x1x6xf32> loc("cls")
  %cat = nn.concat %cb, %e {dim = 1 : i64} : (tensor<2x1x6xf32>, tensor<2x4x6xf32>) -> tensor<2x5x6xf32> loc("cat")
  %p = nn.permute %cat {dims = array<i64: 0, 2, 1>} : (tensor<2x5x6xf32>) -> tensor<2x6x5xf32> loc("perm")
  %sl = nn.slice %p {dim = 2 : i64, start = 1 : i64, end = 5 : i64, step = 1 : i64} : (tensor<2x6x5xf32>) -> tensor<2x6x4xf32> loc("slice")
  %mm = nn.matmul %sl, %e : (tensor<2x6x4xf32>, tensor<2x4x6xf32>) -> tensor<2x6x6xf32> loc("mm")
  %sel = nn.select %mm {dim = 1 : i64, index = 0 : i64} : (tensor<2x6x6xf32>) -> tensor<2x6xf32> loc("select")
  func.return %sel : tensor<2x6xf32>
}
// CHECK-LABEL: builtin.module attributes {attnc.updates = ["embed.weight", "cls",
// CHECK:       %[[DSEL:.*]] = grad.cross_entropy_backward %sel, %labels
// CHECK-NEXT:  %[[R:.*]] = nn.reshape %[[DSEL]] : (tensor<2x6xf32>) -> tensor<2x1x6xf32> loc("select")
// CHECK-NEXT:  %[[DMM:.*]] = nn.pad %[[R]] {pads = array<i64: 0, 0, 0, 5>, value = 0.000000e+00 : f64} : (tensor<2x1x6xf32>) -> tensor<2x6x6xf32> loc("select")
// CHECK-NEXT:  %[[ET:.*]] = nn.transpose %e
// CHECK-NEXT:  %[[DSL:.*]] = nn.matmul %[[DMM]], %[[ET]] {phase = "input-gradient"} : (tensor<2x6x6xf32>, tensor<2x6x4xf32>) -> tensor<2x6x4xf32> loc("mm")
// CHECK-NEXT:  %[[SLT:.*]] = nn.transpose %sl
// CHECK-NEXT:  nn.matmul %[[SLT]], %[[DMM]] {phase = "input-gradient"} : (tensor<2x4x6xf32>, tensor<2x6x6xf32>) -> tensor<2x4x6xf32> loc("mm")
// CHECK-NEXT:  %[[DP:.*]] = nn.pad %[[DSL]] {pads = array<i64: 1, 0>, value = 0.000000e+00 : f64} : (tensor<2x6x4xf32>) -> tensor<2x6x5xf32> loc("slice")
// CHECK-NEXT:  %[[DCAT:.*]] = nn.permute %[[DP]] {dims = array<i64: 0, 2, 1>} : (tensor<2x6x5xf32>) -> tensor<2x5x6xf32> loc("perm")
// CHECK-NEXT:  %[[DCB:.*]] = nn.slice %[[DCAT]] {dim = 1 : i64, start = 0 : i64, end = 1 : i64, step = 1 : i64} {{.*}} loc("cat")
// CHECK-NEXT:  nn.slice %[[DCAT]] {dim = 1 : i64, start = 1 : i64, end = 5 : i64, step = 1 : i64} {{.*}} loc("cat")
// CHECK-NEXT:  nn.add
// CHECK-NEXT:  nn.reduce_sum %[[DCB]] {dims = array<i64: 0>, keepdim = true} : (tensor<2x1x6xf32>) -> tensor<1x1x6xf32> loc("cls")
// CHECK-NEXT:  grad.embedding_backward
// CHECK-SAME:  %{{.*}}, %ids : (tensor<2x4x6xf32>, tensor<2x4xi64>) -> tensor<10x6xf32> loc("embed")
