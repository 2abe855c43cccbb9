// RUN: attnc-opt %s -p 'training-step{lr=0.1},lower-to-tinycl' --split-input-file 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err

// The backward of bidirectional cosine attention on the array: N(Q), N(K) and S = N(K)ᵀV recomputed as the
// forward computes them, dH = dO / max(1, L^s) by tinycl.head_scale, four input-gradient GEMMs in the gradient
// format (A = N(Q)ᵀ·dH, dV = N(K)·A, dN(K) = V·Aᵀ, dN(Q) = dH·Sᵀ), the normalisations' backward and m's
// gradient as units; nothing of the backward but the loss stays in float.
// CHECK-LABEL: func.func @main
// CHECK-NOT:   grad.cosine_backward
// CHECK:       %[[Q:.*]] = tinycl.requant %q_acc
// CHECK:       %[[K:.*]] = tinycl.requant %k_acc
// CHECK:       grad.cross_entropy
// CHECK:       %[[QN:.*]] = tinycl.l2_normalize %[[Q]] {phase = "input-gradient"}
// CHECK:       %[[KN:.*]] = tinycl.l2_normalize %[[K]] {phase = "input-gradient"}
// CHECK:       %[[SACC:.*]] = tinycl.mac forward %{{.*}}, %{{.*}} {phase = "input-gradient"} : (tensor<1x2x8x4x!tinycl.fixed<16, 8>>, tensor<1x2x8x4x!tinycl.fixed<16, 8>>) -> tensor<1x2x8x8x!tinycl.fixed<36, 16>>
// CHECK-NEXT:  %[[S:.*]] = tinycl.requant %[[SACC]] nearest-even saturate {phase = "input-gradient"} : (tensor<1x2x8x8x!tinycl.fixed<36, 16>>) -> tensor<1x2x8x8x!tinycl.fixed<16, 8>>
// CHECK:       %[[DH:.*]] = tinycl.head_scale %{{.*}}, %m {length = 4 : i64, {{.*}}} : (tensor<1x2x4x8x!tinycl.fixed<16, 12>>, tensor<2xf32>) -> tensor<1x2x4x8x!tinycl.fixed<16, 12>>
// CHECK:       %[[AACC:.*]] = tinycl.mac input-gradient %{{.*}}, %[[DH]] {phase = "input-gradient"} : (tensor<1x2x8x4x!tinycl.fixed<16, 8>>, tensor<1x2x4x8x!tinycl.fixed<16, 12>>) -> tensor<1x2x8x8x!tinycl.fixed<36, 20>>
// CHECK-NEXT:  %[[A:.*]] = tinycl.requant %[[AACC]] nearest-even saturate {phase = "input-gradient"} : (tensor<1x2x8x8x!tinycl.fixed<36, 20>>) -> tensor<1x2x8x8x!tinycl.fixed<16, 12>>
// CHECK:       %[[AT:.*]] = tinycl.quantize %{{.*}} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8x!tinycl.fixed<16, 12>>
// CHECK:       tinycl.mac input-gradient %[[KN]], %[[A]] {phase = "input-gradient"} : (tensor<1x2x4x8x!tinycl.fixed<16, 8>>, tensor<1x2x8x8x!tinycl.fixed<16, 12>>) -> tensor<1x2x4x8x!tinycl.fixed<37, 20>>
// CHECK:       %[[DKNACC:.*]] = tinycl.mac input-gradient %{{.*}}, %[[AT]] {phase = "input-gradient"}
// CHECK-NEXT:  %[[DKN:.*]] = tinycl.requant %[[DKNACC]]
// CHECK:       %[[DQNACC:.*]] = tinycl.mac input-gradient %[[DH]], %[[S]] {phase = "input-gradient"} : (tensor<1x2x4x8x!tinycl.fixed<16, 12>>, tensor<1x2x8x8x!tinycl.fixed<16, 8>>) -> tensor<1x2x4x8x!tinycl.fixed<37, 20>>
// CHECK-NEXT:  %[[DQN:.*]] = tinycl.requant %[[DQNACC]]
// CHECK-NEXT:  tinycl.l2_normalize_backward %[[Q]], %[[DQN]] {rounding = "nearest-even", overflow = "saturate", phase = "input-gradient"} : (tensor<1x2x4x8x!tinycl.fixed<16, 8>>, tensor<1x2x4x8x!tinycl.fixed<16, 12>>) -> tensor<1x2x4x8x!tinycl.fixed<16, 12>>
// CHECK-NEXT:  tinycl.l2_normalize_backward %[[K]], %[[DKN]]
// CHECK-NEXT:  tinycl.head_scale_backward %[[AT]], %[[S]], %m {length = 4 : i64, rounding = "nearest-even", overflow = "saturate", phase = "input-gradient"} : (tensor<1x2x8x8x!tinycl.fixed<16, 12>>, tensor<1x2x8x8x!tinycl.fixed<16, 8>>, tensor<2xf32>) -> tensor<2x!tinycl.fixed<16, 12>>
// CHECK-NOT:   grad.cosine_backward
func.func @main(%x: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %wq = nn.param @attn.query.weight : tensor<8x8xf32> loc("attn.query")
  %q = nn.linear %x, %wq : (tensor<1x2x4x8xf32>, tensor<8x8xf32>) -> tensor<1x2x4x8xf32> loc("attn.query")
  %wk = nn.param @attn.key.weight : tensor<8x8xf32> loc("attn.key")
  %k = nn.linear %x, %wk : (tensor<1x2x4x8xf32>, tensor<8x8xf32>) -> tensor<1x2x4x8xf32> loc("attn.key")
  %m = nn.param @attn.cosine_m {init = 5.000000e-01 : f64} : tensor<2xf32> loc("attn")
  %o = attn.cosine %q, %k, %x, %m {causal = false, form = "chunked"} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2xf32>) -> tensor<1x2x4x8xf32> loc("attn")
  func.return %o : tensor<1x2x4x8xf32>
}

// -----

// negative: causal cosine attention has no fixed-point forward, so neither has its backward: both stay on the
// host, each with a remark saying why.
// CHECK-LABEL: func.func @main
// CHECK:       attn.cosine
// CHECK:       grad.cosine_backward
// REMARK:      remark: lower-to-tinycl: attn: attn.cosine stays digital (float on the host): only bidirectional cosine attention without a mask is lowered
// REMARK:      remark: lower-to-tinycl: attn: grad.cosine_backward stays digital (float on the host): only bidirectional cosine attention without a mask is lowered (as the forward)
func.func @main(%x: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %wq = nn.param @attn.query.weight : tensor<8x8xf32> loc("attn.query")
  %q = nn.linear %x, %wq : (tensor<1x2x4x8xf32>, tensor<8x8xf32>) -> tensor<1x2x4x8xf32> loc("attn.query")
  %m = nn.param @attn.cosine_m {init = 5.000000e-01 : f64} : tensor<2xf32> loc("attn")
  %o = attn.cosine %q, %x, %x, %m {causal = true, form = "chunked"} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<2xf32>) -> tensor<1x2x4x8xf32> loc("attn")
  func.return %o : tensor<1x2x4x8xf32>
}
