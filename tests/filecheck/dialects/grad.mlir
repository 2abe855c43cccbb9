// RUN: attnc-opt %s | filecheck %s
// RUN: attnc-opt %s | attnc-opt | filecheck %s

// Every grad op prints in its custom format and parses back.
func.func @ops(%l: tensor<4x10xf32>, %y: tensor<4xi64>, %p: tensor<2x3x5xf32>, %x: tensor<2x3x8xf32>, %w: tensor<8xf32>,
               %ids: tensor<2x3xi64>, %e: tensor<2x3x6xf32>, %q: tensor<1x2x4x8xf32>, %m: tensor<2xf32>,
               %param: tensor<10x6xf32>) {
  %loss = grad.cross_entropy %l, %y : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<f32>
  %dl = grad.cross_entropy_backward %l, %y : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<4x10xf32>
  %ds = grad.softmax_backward %p, %p {dim = -1 : i64} : (tensor<2x3x5xf32>, tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
  %dx = grad.layer_norm_backward %x, %x weight %w {normalized_shape = array<i64: 8>, eps = 1.0e-05 : f64} : (tensor<2x3x8xf32>, tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  %dg = grad.gelu_backward %x, %x {approximate = "tanh"} : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
  %dr = grad.relu_backward %x, %x : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
  %dt = grad.embedding_backward %e, %ids : (tensor<2x3x6xf32>, tensor<2x3xi64>) -> tensor<10x6xf32>
  %dq, %dk, %dv, %dm = grad.cosine_backward %q, %q, %q, %m, %q {causal = false, form = "chunked"} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2xf32>, tensor<1x2x4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2xf32>)
  %p1, %v1 = grad.sgd %param, %dt velocity %param {lr = 0.1 : f64, momentum = 0.9 : f64} : (tensor<10x6xf32>, tensor<10x6xf32>, tensor<10x6xf32>) -> (tensor<10x6xf32>, tensor<10x6xf32>)
  %p2 = grad.sgd %param, %dt {lr = 0.1 : f64, momentum = 0.0 : f64} : (tensor<10x6xf32>, tensor<10x6xf32>) -> tensor<10x6xf32>
  func.return
}
// CHECK-LABEL: func.func @ops
// CHECK:       %loss = grad.cross_entropy %l, %y : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<f32>
// CHECK-NEXT:  %dl = grad.cross_entropy_backward %l, %y : (tensor<4x10xf32>, tensor<4xi64>) -> tensor<4x10xf32>
// CHECK-NEXT:  %ds = grad.softmax_backward %p, %p {dim = -1 : i64}
// CHECK-NEXT:  %dx = grad.layer_norm_backward %x, %x weight %w {normalized_shape = array<i64: 8>, eps = 1.000000e-05 : f64}
// CHECK-NEXT:  %dg = grad.gelu_backward %x, %x {approximate = "tanh"}
// CHECK-NEXT:  %dr = grad.relu_backward %x, %x
// CHECK-NEXT:  %dt = grad.embedding_backward %e, %ids : (tensor<2x3x6xf32>, tensor<2x3xi64>) -> tensor<10x6xf32>
// CHECK-NEXT:  %dq, %dk, %dv, %dm = grad.cosine_backward %q, %q, %q, %m, %q {causal = false, form = "chunked"}
// CHECK-NEXT:  %p1, %v1 = grad.sgd %param, %dt velocity %param {lr = 1.000000e-01 : f64, momentum = 9.000000e-01 : f64}
// CHECK-NEXT:  %p2 = grad.sgd %param, %dt {lr = 1.000000e-01 : f64, momentum = 0.000000e+00 : f64} : (tensor<10x6xf32>, tensor<10x6xf32>) -> tensor<10x6xf32>
