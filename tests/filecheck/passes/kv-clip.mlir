// RUN: attnc-opt %s -p kv-clip --split-input-file --print-debuginfo | filecheck %s
// RUN: attnc-opt %s -p 'kv-clip{alpha=1.0 beta=0.5}' --split-input-file | filecheck --check-prefix=OPTS %s
// RUN: attnc-opt %s -p 'kv-clip{layers="layer[.]1[.]"}' --split-input-file | filecheck --check-prefix=LAYERS %s
// RUN: attnc-opt %s -p 'kv-clip,kv-clip{alpha=0.0 beta=1.0}' --split-input-file | filecheck --check-prefix=TWICE %s
// RUN: not attnc-opt %s -p 'kv-clip{beta=1.5}' 2>&1 | filecheck --check-prefix=BADBETA %s
// RUN: not attnc-opt %s -p 'kv-clip{alpha=-1.0}' 2>&1 | filecheck --check-prefix=BADALPHA %s
// RUN: not attnc-opt %s -p 'kv-clip{g-min=1.0e-05 g-max=1.0e-07}' 2>&1 | filecheck --check-prefix=BADRANGE %s

// Bad option values are errors with a message, not a traceback, and print no IR.
// BADBETA-NOT:  builtin.module
// BADBETA:      attnc-opt: error: kv-clip: beta must be in (0, 1] (a ceiling of beta·g_max), got 1.5
// BADALPHA:     attnc-opt: error: kv-clip: alpha must be >= 0 (a dead zone of alpha·g_min), got -1.0
// BADRANGE:     attnc-opt: error: kv-clip: need 0 <= g-min < g-max, got g-min=1e-05, g-max=1e-07

// K and V (not Q) go through attn.kv_clip before the attention; the clips carry the attention's location
// and the conductance range (defaults 0.1 uS / 10 uS); the mask stays where it was.

func.func @masked(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @masked
// CHECK-NEXT:    %k_clip = attn.kv_clip %k {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
// CHECK-NEXT:    %v_clip = attn.kv_clip %v {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64, g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
// CHECK-NEXT:    %o = attn.sdpa %q, %k_clip, %v_clip mask %m {scale = 2.500000e-01 : f64, causal = false} : {{.*}} loc("layer.0.attn")
// CHECK-NEXT:    func.return %o

// OPTS-LABEL: func.func @masked
// OPTS:         attn.kv_clip %k {alpha = 1.000000e+00 : f64, beta = 5.000000e-01 : f64,
// OPTS:         attn.kv_clip %v {alpha = 1.000000e+00 : f64, beta = 5.000000e-01 : f64,

// Not matched by the layers regex: left alone.
// LAYERS-LABEL: func.func @masked
// LAYERS-NOT:     attn.kv_clip
// LAYERS:         %o = attn.sdpa %q, %k, %v mask %m

// -----

// Causal attention, K and V from the same value: each operand slot gets its own clip.

func.func @shared_kv(%q: tensor<1x2x8x16xf32>, %kv: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %o = attn.sdpa %q, %kv, %kv {scale = 0.25 : f64, causal = true} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> loc("layer.1.attn")
  func.return %o : tensor<1x2x8x16xf32>
}

// CHECK-LABEL: func.func @shared_kv
// CHECK-NEXT:    [[K:%[0-9a-z_]+]] = attn.kv_clip %kv
// CHECK-NEXT:    [[V:%[0-9a-z_]+]] = attn.kv_clip %kv
// CHECK-NEXT:    %o = attn.sdpa %q, [[K]], [[V]] {scale = 2.500000e-01 : f64, causal = true}

// The layers regex matches this one.
// LAYERS-LABEL: func.func @shared_kv
// LAYERS-NEXT:    attn.kv_clip %kv
// LAYERS-NEXT:    attn.kv_clip %kv
// LAYERS-NEXT:    attn.sdpa

// -----

// negative_: operands that are already clipped are not clipped again (the pass is idempotent), even by a
// second kv-clip with other options.

func.func @negative_already_clipped(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> loc("layer.2.attn")
  func.return %o : tensor<1x2x8x16xf32>
}

// TWICE-LABEL: func.func @negative_already_clipped
// TWICE-NEXT:    %k_clip = attn.kv_clip %k {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64
// TWICE-NEXT:    %v_clip = attn.kv_clip %v {alpha = 2.000000e+00 : f64, beta = 2.500000e-01 : f64
// TWICE-NEXT:    %o = attn.sdpa %q, %k_clip, %v_clip
// TWICE-NOT:     attn.kv_clip

// -----

// negative_: cosine attention and plain matmuls are not softmax attention: nothing to clip.

func.func @negative_cosine(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %m: tensor<2xf32>, %w: tensor<16x16xf32>) -> (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) {
  %o = attn.cosine %q, %k, %v, %m {causal = false, form = "chunked"} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<2xf32>) -> tensor<1x2x8x16xf32>
  %y = nn.matmul %k, %w : (tensor<1x2x8x16xf32>, tensor<16x16xf32>) -> tensor<1x2x8x16xf32>
  func.return %o, %y : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>
}

// CHECK-LABEL: func.func @negative_cosine
// CHECK-NOT:     attn.kv_clip
// CHECK:         attn.cosine %q, %k, %v, %m
// CHECK-NEXT:    nn.matmul %k, %w
// CHECK-NOT:     attn.kv_clip
