// RUN: attnc-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s

// One case per diagnostic of the grad dialect (dialects/grad.py).
func.func @labels_shape(%l: tensor<4x10xf32>, %y: tensor<3xi64>) {
  %loss = grad.cross_entropy %l, %y : (tensor<4x10xf32>, tensor<3xi64>) -> tensor<f32>
  func.return
}
// CHECK: labels shape 3 must be the logits shape without its class dim 4

// -----
func.func @float_labels(%l: tensor<4x10xf32>, %y: tensor<4xf32>) {
  %d = grad.cross_entropy_backward %l, %y : (tensor<4x10xf32>, tensor<4xf32>) -> tensor<4x10xf32>
  func.return
}
// CHECK: labels must be integers, got f32

// -----
func.func @softmax_backward_shapes(%y: tensor<2x4xf32>, %dy: tensor<2x5xf32>) {
  %d = grad.softmax_backward %y, %dy {dim = -1 : i64} : (tensor<2x4xf32>, tensor<2x5xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK: softmax output, its gradient and the result must have one shape, got 2x4, 2x5, 2x4

// -----
func.func @layer_norm_weight(%x: tensor<2x8xf32>, %dy: tensor<2x8xf32>, %w: tensor<4xf32>) {
  %d = grad.layer_norm_backward %x, %dy weight %w {normalized_shape = array<i64: 8>, eps = 1.0e-05 : f64} : (tensor<2x8xf32>, tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  func.return
}
// CHECK: weight shape 4 must equal 8

// -----
func.func @embedding_width(%dy: tensor<2x3x6xf32>, %ids: tensor<2x3xi64>) {
  %d = grad.embedding_backward %dy, %ids : (tensor<2x3x6xf32>, tensor<2x3xi64>) -> tensor<10x5xf32>
  func.return
}
// CHECK: gradient 2x3x6 must be indices 2x3 by the table width of 10x5

// -----
func.func @sgd_momentum_without_velocity(%p: tensor<4xf32>, %g: tensor<4xf32>) {
  %p1 = grad.sgd %p, %g {lr = 0.1 : f64, momentum = 0.9 : f64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: a momentum > 0 takes one velocity operand, momentum 0 none

// -----
func.func @sgd_lr(%p: tensor<4xf32>, %g: tensor<4xf32>) {
  %p1 = grad.sgd %p, %g {lr = 0.0 : f64, momentum = 0.0 : f64} : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: lr must be positive, got 0.0

// -----
func.func @sgd_grad_type(%p: tensor<4xf32>, %g: tensor<3xf32>) {
  %p1 = grad.sgd %p, %g {lr = 0.1 : f64, momentum = 0.0 : f64} : (tensor<4xf32>, tensor<3xf32>) -> tensor<4xf32>
  func.return
}
// CHECK: gradient type tensor<3xf32> must equal the parameter type tensor<4xf32>
