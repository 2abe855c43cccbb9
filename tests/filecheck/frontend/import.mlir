// Import a tiny two-block encoder (tiny_model.py:tiny_attention) through torch.export and the FX importer:
// parameters become named nn.param symbols, every op carries its module path as its location, and the
// weights live in a safetensors file the module points to. The written model.mlir then goes through
// attnc-opt -p attn-raise (no second torch import): each block's eager attention becomes one attn.sdpa
// located at that block's attention module.

// RUN: attnc compile %S/tiny_model.py:tiny_attention -o %t && filecheck %s < %t/model.mlir
// RUN: attnc-opt %t/model.mlir -p attn-raise --print-debuginfo | filecheck %s --check-prefix=RAISE

// CHECK:       builtin.module attributes {attnc.weights = "weights.safetensors", attnc.inputs = ["x"]}
// CHECK:       func.func @main(%x: tensor<2x5x16xf32>
// CHECK:       %layers_0_attn_query_weight = nn.param @layers.0.attn.query.weight : tensor<16x16xf32> loc("layers.0.attn.query")
// CHECK-NEXT:  %layers_0_attn_query_bias = nn.param @layers.0.attn.query.bias : tensor<16xf32> loc("layers.0.attn.query")
// CHECK-NEXT:  nn.linear %{{.*}}, %layers_0_attn_query_weight, %layers_0_attn_query_bias : (tensor<2x5x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<2x5x16xf32> loc("layers.0.attn.query")
// CHECK:       nn.softmax %{{.*}} {dim = -1 : i64} : {{.*}} loc("layers.0.attn")
// CHECK:       nn.param @layers.1.mlp.2.weight : tensor<16x32xf32> loc("layers.1.mlp.2")
// CHECK-NOT:   attn.sdpa

// RAISE:       builtin.module attributes {attnc.weights = "weights.safetensors", attnc.inputs = ["x"]}
// RAISE-NOT:   nn.softmax
// RAISE:       attn.sdpa %{{.*}}, %{{.*}}, %{{.*}} {scale = 0.353553{{[0-9]*}} : f64, causal = false} : (tensor<2x2x5x8xf32>, tensor<2x2x5x8xf32>, tensor<2x2x5x8xf32>) -> tensor<2x2x5x8xf32> loc("layers.0.attn")
// RAISE-NOT:   nn.softmax
// RAISE:       attn.sdpa %{{.*}}, %{{.*}}, %{{.*}} {scale = 0.353553{{[0-9]*}} : f64, causal = false} : {{.*}} loc("layers.1.attn")
// RAISE-NOT:   nn.softmax
