// RUN: attnc-opt %s -p attn-cosine --split-input-file --print-debuginfo 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'attn-cosine{causal-form=recurrent}' --split-input-file | filecheck --check-prefix=RECUR %s
// RUN: attnc-opt %s -p 'attn-cosine{causal=true}' --split-input-file | filecheck --check-prefix=FORCE %s
// RUN: attnc-opt %s -p 'attn-cosine{layers="layers[.]1[.]"}' --split-input-file | filecheck --check-prefix=LAYERS %s
// RUN: not attnc-opt %s -p 'attn-cosine{causal-form=bogus}' --split-input-file 2>&1 | filecheck --check-prefix=BAD %s

// The remarks go to stderr, one per attention left alone, in file order; the rewritten ones say nothing.
// (This filecheck searches a leading NOT up to the end of the first match, so it names the other paths.)

// REMARK-NOT:  {{(layer|layers|h|enc)[.][0-9]+[.]attn}}
// REMARK:      remark: attn-cosine: t5.block.0.attn: an additive bias mask cannot be expressed in cosine attention (only padding/causal masks)
// REMARK-NEXT: remark: attn-cosine: albert.encoder.0.attn: an additive bias mask cannot be expressed in cosine attention (only padding/causal masks)
// REMARK-NEXT: remark: attn-cosine: mha.0: needs (batch, heads, length, dim) operands to give each head its m; got rank 3
// REMARK-NEXT: remark: attn-cosine: win.0.attn: a constant mask that is neither the causal triangle nor key padding (a sliding window?)
// REMARK-NEXT: remark: attn-cosine: per-query.0.attn: the mask term of shape 2x1x3x3 spans queries: checked at run time to be key padding
// REMARK-NEXT: remark: attn-cosine: cap.0.attn: soft-capped scores: cosine attention has no logits to cap; the cap is dropped
// REMARK-NOT:  remark

// A bad option value is an error with a message, not a traceback, and prints no IR.

// BAD-NOT:     Traceback
// BAD-NOT:     builtin.module
// BAD:         attnc-opt: error: attn-cosine: causal-form must be one of chunked, recurrent, got 'bogus'
// BAD-NOT:     Traceback
// BAD-NOT:     builtin.module

// No mask: a per-head m (H = 4) named after the module path, and the cosine op keeps the sdpa's location.

func.func @no_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @no_mask
// CHECK-NOT:     attn.sdpa
// CHECK:         [[M:%[0-9a-z_]+]] = nn.param @layer.0.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<4xf32> loc("layer.0.attn")
// CHECK-NEXT:    %o = attn.cosine %q, %k, %v, [[M]] {causal = false, form = "chunked"} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<4xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
// CHECK-NEXT:    func.return %o
// CHECK-NOT:     attn.sdpa

// causal-form only picks the kernel: a bidirectional attention stays bidirectional.
// RECUR-LABEL: func.func @no_mask
// RECUR:         %o = attn.cosine %q, %k, %v, {{%[0-9a-z_]+}} {causal = false, form = "recurrent"}

// causal=true makes every rewritten attention causal.
// FORCE-LABEL: func.func @no_mask
// FORCE:         %o = attn.cosine %q, %k, %v, {{%[0-9a-z_]+}} {causal = true, form = "chunked"}

// Not matched by the layers regex: left alone.
// LAYERS-LABEL: func.func @no_mask
// LAYERS-NOT:     attn.cosine
// LAYERS:         %o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false}
// LAYERS-NOT:     attn.cosine

// -----

// A causal sdpa becomes a causal cosine attention (H = 2).

func.func @causal(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = true} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> loc("h.1.attn")
  func.return %o : tensor<1x2x8x16xf32>
}

// CHECK-LABEL: func.func @causal
// CHECK-NOT:     attn.sdpa
// CHECK:         [[M:%[0-9a-z_]+]] = nn.param @h.1.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<2xf32> loc("h.1.attn")
// CHECK-NEXT:    %o = attn.cosine %q, %k, %v, [[M]] {causal = true, form = "chunked"} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<2xf32>) -> tensor<1x2x8x16xf32> loc("h.1.attn")
// CHECK-NOT:     attn.sdpa

// RECUR-LABEL: func.func @causal
// RECUR:         %o = attn.cosine %q, %k, %v, {{%[0-9a-z_]+}} {causal = true, form = "recurrent"}

// -----

// A boolean keep-mask is carried over as the cosine op's mask.

func.func @bool_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> loc("enc.2.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @bool_mask
// CHECK-NOT:     attn.sdpa
// CHECK:         [[M:%[0-9a-z_]+]] = nn.param @enc.2.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<4xf32>
// CHECK-NEXT:    %o = attn.cosine %q, %k, %v, [[M]] mask %m {causal = false, form = "chunked"} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<4xf32>, tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> loc("enc.2.attn")
// CHECK-NOT:     attn.sdpa

// causal=true with an explicit mask (Hugging Face decoders): causal and the mask together.
// FORCE-LABEL: func.func @bool_mask
// FORCE:         %o = attn.cosine %q, %k, %v, {{%[0-9a-z_]+}} mask %m {causal = true, form = "chunked"}

// -----

// An additive mask where(keep, 0, finfo.min) becomes its boolean keep-mask.

func.func @additive_where_mask(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %keep: tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> {
  %zero = nn.constant dense<0.0> : tensor<f32>
  %neg = nn.constant dense<-3.40282347E+38> : tensor<f32>
  %am = nn.where %keep, %zero, %neg : (tensor<2x1x1x8xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x8xf32>
  %o = attn.sdpa %q, %k, %v mask %am {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> loc("enc.3.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @additive_where_mask
// CHECK-NOT:     attn.sdpa
// CHECK:         [[M:%[0-9a-z_]+]] = nn.param @enc.3.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<4xf32>
// CHECK-NEXT:    %o = attn.cosine %q, %k, %v, [[M]] mask %keep {causal = false, form = "chunked"} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<4xf32>, tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> loc("enc.3.attn")
// CHECK-NOT:     attn.sdpa

// -----

// Two attentions: the layers regex (searched in the module path) picks only layers.1.

func.func @two_layers(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %a = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> loc("layers.0.attn")
  %b = attn.sdpa %a, %k, %v {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> loc("layers.1.attn")
  func.return %b : tensor<2x4x8x16xf32>
}

// Without layers, both are rewritten, each with its own m.
// CHECK-LABEL: func.func @two_layers
// CHECK-NOT:     attn.sdpa
// CHECK:         [[M0:%[0-9a-z_]+]] = nn.param @layers.0.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<4xf32>
// CHECK-NEXT:    %a = attn.cosine %q, %k, %v, [[M0]] {causal = false, form = "chunked"}
// CHECK-NEXT:    [[M1:%[0-9a-z_]+]] = nn.param @layers.1.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<4xf32>
// CHECK-NEXT:    %b = attn.cosine %a, %k, %v, [[M1]] {causal = false, form = "chunked"}
// CHECK-NOT:     attn.sdpa

// LAYERS-LABEL: func.func @two_layers
// LAYERS-NOT:     layers.0.attn.cosine_m
// LAYERS:         %a = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false}
// LAYERS-NEXT:    [[M1:%[0-9a-z_]+]] = nn.param @layers.1.attn.cosine_m {init = 5.000000e-01 : f64, trainable = "cosine"} : tensor<4xf32>
// LAYERS-NEXT:    %b = attn.cosine %a, %k, %v, [[M1]] {causal = false, form = "chunked"}
// LAYERS-NOT:     layers.0.attn.cosine_m

// -----

// An arbitrary additive bias (T5's relative position bias) has no cosine form: left alone, with a remark.

func.func @negative_additive_bias(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %bias: tensor<1x4x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v mask %bias {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<1x4x8x8xf32>) -> tensor<2x4x8x16xf32> loc("t5.block.0.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_additive_bias
// CHECK-NOT:     nn.param
// CHECK-NOT:     attn.cosine
// CHECK:         %o = attn.sdpa %q, %k, %v mask %bias {scale = 2.500000e-01 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<1x4x8x8xf32>) -> tensor<2x4x8x16xf32> loc("t5.block.0.attn")
// CHECK-NOT:     nn.param
// CHECK-NOT:     attn.cosine

// -----

// where(keep, 0, -1) is a soft bias, not a mask (masked-out scores must be at most -1e4): left alone.

func.func @negative_where_soft_bias(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %keep: tensor<2x1x1x8xi1>) -> tensor<2x4x8x16xf32> {
  %zero = nn.constant dense<0.0> : tensor<f32>
  %neg = nn.constant dense<-1.0> : tensor<f32>
  %am = nn.where %keep, %zero, %neg : (tensor<2x1x1x8xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x1x8xf32>
  %o = attn.sdpa %q, %k, %v mask %am {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> loc("albert.encoder.0.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_where_soft_bias
// CHECK-NOT:     nn.param
// CHECK-NOT:     attn.cosine
// CHECK:         %o = attn.sdpa %q, %k, %v mask %am {scale = 2.500000e-01 : f64, causal = false}
// CHECK-NOT:     nn.param
// CHECK-NOT:     attn.cosine

// -----

// Rank-3 (batch*heads, length, dim) operands have no head dimension to give m: left alone, with a remark.

func.func @negative_rank3(%q: tensor<8x10x16xf32>, %k: tensor<8x10x16xf32>, %v: tensor<8x10x16xf32>) -> tensor<8x10x16xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = false} : (tensor<8x10x16xf32>, tensor<8x10x16xf32>, tensor<8x10x16xf32>) -> tensor<8x10x16xf32> loc("mha.0")
  func.return %o : tensor<8x10x16xf32>
}

// CHECK-LABEL: func.func @negative_rank3
// CHECK-NOT:     nn.param
// CHECK-NOT:     attn.cosine
// CHECK:         %o = attn.sdpa %q, %k, %v {scale = 2.500000e-01 : f64, causal = false} : (tensor<8x10x16xf32>, tensor<8x10x16xf32>, tensor<8x10x16xf32>) -> tensor<8x10x16xf32> loc("mha.0")
// CHECK-NOT:     nn.param
// CHECK-NOT:     attn.cosine

// -----

// A Hugging Face decoder mask: the importer folded its position-built part to a constant triangle, and-ed with
// the padding from attention_mask, as where(keep, 0, min). Split at compile time: causal = true, and the
// padding term is the keep-mask.

func.func @causal_and_padding(%q: tensor<2x4x3x16xf32>, %k: tensor<2x4x3x16xf32>, %v: tensor<2x4x3x16xf32>, %pad: tensor<2x1x1x3xi1>) -> tensor<2x4x3x16xf32> {
  %tri = nn.constant dense<[[[[true, false, false], [true, true, false], [true, true, true]]]]> : tensor<1x1x3x3xi1>
  %keep = nn.logical_and %tri, %pad : (tensor<1x1x3x3xi1>, tensor<2x1x1x3xi1>) -> tensor<2x1x3x3xi1>
  %zero = nn.constant dense<0.0> : tensor<f32>
  %min = nn.constant dense<-3.40282347e+38> : tensor<f32>
  %m = nn.where %keep, %zero, %min : (tensor<2x1x3x3xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x3x3xf32>
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, tensor<2x1x3x3xf32>) -> tensor<2x4x3x16xf32> loc("dec.0.attn")
  func.return %o : tensor<2x4x3x16xf32>
}

// CHECK-LABEL: func.func @causal_and_padding
// CHECK:         %o = attn.cosine %q, %k, %v, %{{.*}} mask %pad {causal = true, form = "chunked"}

// -----

// A constant band (a sliding window, Mistral) is not expressible: left alone, with a remark.

func.func @negative_sliding_window(%q: tensor<1x4x3x16xf32>, %k: tensor<1x4x3x16xf32>, %v: tensor<1x4x3x16xf32>) -> tensor<1x4x3x16xf32> {
  %band = nn.constant dense<[[[[true, false, false], [true, true, false], [false, true, true]]]]> : tensor<1x1x3x3xi1>
  %o = attn.sdpa %q, %k, %v mask %band {scale = 0.25 : f64, causal = false} : (tensor<1x4x3x16xf32>, tensor<1x4x3x16xf32>, tensor<1x4x3x16xf32>, tensor<1x1x3x3xi1>) -> tensor<1x4x3x16xf32> loc("win.0.attn")
  func.return %o : tensor<1x4x3x16xf32>
}

// CHECK-LABEL: func.func @negative_sliding_window
// CHECK-NOT:     attn.cosine
// CHECK:         attn.sdpa %q, %k, %v mask %band

// -----

// An input-dependent mask that spans queries cannot be judged at compile time: it is kept, the runtime checks
// that it is key padding (an error there if not), and a remark says so.

func.func @per_query_mask(%q: tensor<2x4x3x16xf32>, %k: tensor<2x4x3x16xf32>, %v: tensor<2x4x3x16xf32>, %m: tensor<2x1x3x3xi1>) -> tensor<2x4x3x16xf32> {
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, tensor<2x4x3x16xf32>, tensor<2x1x3x3xi1>) -> tensor<2x4x3x16xf32> loc("per-query.0.attn")
  func.return %o : tensor<2x4x3x16xf32>
}

// CHECK-LABEL: func.func @per_query_mask
// CHECK:         %o = attn.cosine %q, %k, %v, %{{.*}} mask %m {causal = false, form = "chunked"}

// -----

// Soft-capped scores: cosine attention has no logits, so the cap is dropped, with a remark.

func.func @soft_capped(%q: tensor<1x4x3x16xf32>, %k: tensor<1x4x3x16xf32>, %v: tensor<1x4x3x16xf32>) -> tensor<1x4x3x16xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = true, softcap = 50.0 : f64} : (tensor<1x4x3x16xf32>, tensor<1x4x3x16xf32>, tensor<1x4x3x16xf32>) -> tensor<1x4x3x16xf32> loc("cap.0.attn")
  func.return %o : tensor<1x4x3x16xf32>
}

// CHECK-LABEL: func.func @soft_capped
// CHECK:         %o = attn.cosine %q, %k, %v, %{{.*}} {causal = true, form = "chunked"}

