// RUN: attnc-opt %s -p lower-to-xbar --split-input-file --print-debuginfo 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'lower-to-xbar{tile-rows=32 tile-cols=16 gamma=5.0 sigma=0.2 adc-bits=0 read-noise=0.01 stuck-at-rate=0.001 mode=exact}' --split-input-file | filecheck --check-prefix=OPTS %s
// RUN: attnc-opt %s -p 'kv-clip{alpha=2.0 beta=0.25},lower-to-xbar' --split-input-file | filecheck --check-prefix=CLIP %s
// RUN: attnc-opt %s -p 'lower-to-xbar{skip-zero-tiles=false}' --split-input-file | filecheck --check-prefix=NOSKIP %s
// RUN: not attnc-opt %s -p 'lower-to-xbar{adc-range=auto}' 2>&1 | filecheck --check-prefix=BADADC %s
// RUN: attnc-opt %s -p 'lower-to-xbar{adc-range=calibrated}' --split-input-file | filecheck --check-prefix=CALADC %s
// RUN: not attnc-opt %s -p 'lower-to-xbar{gamma=-1.0}' 2>&1 | filecheck --check-prefix=BADGAMMA %s
// RUN: not attnc-opt %s -p 'lower-to-xbar,lower-to-xbar' 2>&1 | filecheck --check-prefix=TWICE %s
// RUN: not attnc-opt %s -p 'kv-clip{g-max=2.0e-05},lower-to-xbar' 2>&1 | filecheck --check-prefix=RANGE %s
// RUN: attnc-opt %s -p 'kv-clip{alpha=2.0 beta=0.25},lower-to-xbar{kv-range=token clip-domain=value}' --split-input-file | filecheck --check-prefix=TOKEN %s
// RUN: attnc-opt %s -p 'lower-to-xbar{kv-range=head kv-percentile=99.0 clip-domain=value}' --split-input-file | filecheck --check-prefix=HEAD %s
// RUN: not attnc-opt %s -p 'lower-to-xbar{kv-range=row}' 2>&1 | filecheck --check-prefix=BADKV %s
// RUN: not attnc-opt %s -p 'lower-to-xbar{kv-range=head kv-percentile=0.0}' 2>&1 | filecheck --check-prefix=BADPCT %s

// Bad options and inconsistent pipelines are one-line errors.
// BADADC:   attnc-opt: error: lower-to-xbar: adc-range must be one of dynamic, calibrated, max, got 'auto'

// A calibrated ADC range is the device's; the pass leaves the full-scales to the compile driver's step
// (fitting/adc_ranges.py, run on calibration inputs), so attnc-opt's arrays have none yet.
// CALADC: builtin.module attributes {xbar.device = {{.*}}adc_range = "calibrated"
// CALADC-NOT: adc_full_scale
// BADGAMMA: attnc-opt: error: lower-to-xbar: gamma must be >= 0, got -1.0
// TWICE:    attnc-opt: error: lower-to-xbar: the module is already lowered to crossbars
// BADKV:    attnc-opt: error: lower-to-xbar: kv-range must be one of matrix, global, head, token, got 'row'
// BADPCT:   attnc-opt: error: lower-to-xbar: kv-percentile must be in (0, 100], got 0.0
// RANGE:    attnc-opt: error: lower-to-xbar: kv-clip was defined for g-min=1e-07, g-max=2e-05 but the crossbar has g-min=1e-07, g-max=1e-05; give both passes the same range

// Ops that stay digital say why on stderr, once each, in file order.
// REMARK:      remark: lower-to-xbar: proj.dyn: the weight is computed, not a parameter: a static crossbar cannot hold it; stays digital
// REMARK-NEXT: remark: lower-to-xbar: shared.attn: K 1x4x8x16 and V 1x4x8x16 must have Q's leading dims 2x4, or fewer heads that divide Q's (grouped-query attention); stays digital
// REMARK-NOT:  remark

// The device parameters land on the module (defaults: 2-bit cells, 8-bit weights and inputs, 6-bit
// dynamic ADC, 0.1-10 uS, differential pairs, no noise).
// CHECK: builtin.module attributes {xbar.device = {bits_per_cell = 2 : i64, weight_bits = 8 : i64, input_bits = 8 : i64, adc_bits = 6 : i64, adc_range = "dynamic", g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64, signed_mapping = "differential", gamma = 5.000000e+00 : f64, sigma = 1.000000e-01 : f64, program_noise = 0.000000e+00 : f64, read_noise = 0.000000e+00 : f64, read_noise_pool = 0 : i64, stuck_at_rate = 0.000000e+00 : f64, stuck_at_high_fraction = 5.000000e-01 : f64, mode = "fast"}}
// OPTS:  builtin.module attributes {xbar.device = {bits_per_cell = 2 : i64, weight_bits = 8 : i64, input_bits = 8 : i64, adc_bits = 0 : i64, adc_range = "dynamic", g_min = 1.000000e-07 : f64, g_max = 1.000000e-05 : f64, signed_mapping = "differential", gamma = 5.000000e+00 : f64, sigma = 2.000000e-01 : f64, program_noise = 0.000000e+00 : f64, read_noise = 1.000000e-02 : f64, read_noise_pool = 0 : i64, stuck_at_rate = 1.000000e-03 : f64, stuck_at_high_fraction = 5.000000e-01 : f64, mode = "exact"}}

// A linear with a parameter weight: the weight is programmed once, right after the parameter, into a grid
// of ceil(in/rows) x ceil(out/cols) tiles; the product is a crossbar MVM and the bias is added digitally.

func.func @linear(%x: tensor<2x5x130xf32>) -> tensor<2x5x100xf32> {
  %w = nn.param @fc.weight : tensor<100x130xf32> loc("fc")
  %b = nn.param @fc.bias : tensor<100xf32> loc("fc")
  %y = nn.linear %x, %w, %b : (tensor<2x5x130xf32>, tensor<100x130xf32>, tensor<100xf32>) -> tensor<2x5x100xf32> loc("fc")
  func.return %y : tensor<2x5x100xf32>
}

// CHECK-LABEL: func.func @linear
// CHECK-NEXT:    %w = nn.param @fc.weight : tensor<100x130xf32> loc("fc")
// CHECK-NEXT:    %w_tiles = xbar.program %w : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 64x64, grid = 3x2> loc("fc")
// CHECK-NEXT:    %b = nn.param @fc.bias
// CHECK-NEXT:    %y_mvm = xbar.mvm %w_tiles, %x : (!xbar.tiles<100x130, tile = 64x64, grid = 3x2>, tensor<2x5x130xf32>) -> tensor<2x5x100xf32> loc("fc")
// CHECK-NEXT:    %y = nn.add %y_mvm, %b : (tensor<2x5x100xf32>, tensor<100xf32>) -> tensor<2x5x100xf32> loc("fc")
// CHECK-NEXT:    func.return %y
// CHECK-NOT:     nn.linear

// Another tile size gives another grid.
// OPTS-LABEL: func.func @linear
// OPTS:         xbar.program %w : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 32x16, grid = 5x7>

// -----

// Two linears on one weight (tied weights) share one programmed array; no bias means no add.

func.func @tied(%x: tensor<4x32xf32>, %z: tensor<4x32xf32>) -> (tensor<4x48xf32>, tensor<4x48xf32>) {
  %w = nn.param @tied.weight : tensor<48x32xf32>
  %a = nn.linear %x, %w : (tensor<4x32xf32>, tensor<48x32xf32>) -> tensor<4x48xf32> loc("enc")
  %c = nn.linear %z, %w : (tensor<4x32xf32>, tensor<48x32xf32>) -> tensor<4x48xf32> loc("dec")
  func.return %a, %c : tensor<4x48xf32>, tensor<4x48xf32>
}

// CHECK-LABEL: func.func @tied
// CHECK-NEXT:    %w = nn.param @tied.weight
// CHECK-NEXT:    %w_tiles = xbar.program %w : (tensor<48x32xf32>) -> !xbar.tiles<48x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT:    %a = xbar.mvm %w_tiles, %x {{.*}} loc("enc")
// CHECK-NEXT:    %c = xbar.mvm %w_tiles, %z {{.*}} loc("dec")
// CHECK-NOT:     xbar.program

// -----

// Softmax attention: K is written per inference and Q.K^T is an MVM on it; scale and mask are applied by
// the digital softmax; V^T is written and P.V is an MVM. Every op keeps the attention's location.

func.func @attention(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @attention
// CHECK-NEXT:    %o_k_tiles = xbar.write %k : (tensor<2x4x8x16xf32>) -> !xbar.tiles<2x4x8x16, tile = 64x64, grid = 1x1> loc("layer.0.attn")
// CHECK-NEXT:    %o_scores = xbar.mvm %o_k_tiles, %q : (!xbar.tiles<2x4x8x16, tile = 64x64, grid = 1x1>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x8xf32> loc("layer.0.attn")
// CHECK-NEXT:    %o_probs = attn.softmax %o_scores mask %m {scale = 2.500000e-01 : f64, causal = false} : (tensor<2x4x8x8xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x8xf32> loc("layer.0.attn")
// CHECK-NEXT:    %o_vt = nn.transpose %v {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x4x8x16xf32>) -> tensor<2x4x16x8xf32> loc("layer.0.attn")
// CHECK-NEXT:    %o_v_tiles = xbar.write %o_vt : (tensor<2x4x16x8xf32>) -> !xbar.tiles<2x4x16x8, tile = 64x64, grid = 1x1> loc("layer.0.attn")
// CHECK-NEXT:    %o = xbar.mvm %o_v_tiles, %o_probs : (!xbar.tiles<2x4x16x8, tile = 64x64, grid = 1x1>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
// CHECK-NEXT:    func.return %o
// CHECK-NOT:     attn.sdpa

// With kv-clip first, the clips fold into the writes (ClipFormer on conductances) and disappear.
// CLIP-LABEL: func.func @attention
// CLIP-NOT:     attn.kv_clip
// CLIP:         xbar.write %k {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64}
// CLIP:         attn.softmax
// CLIP:         nn.transpose %v
// CLIP-NEXT:    xbar.write %o_vt {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64}
// CLIP-NEXT:    xbar.mvm
// CLIP-NEXT:    func.return

// A range policy lands on every K/V write (targets/crossbar/kv_ranges.py runs it); the clip domain only where a
// clip folded in. A calibrated policy (global, head) records its percentile and leaves the ranges themselves
// (kv_scale) to the compile driver's step on calibration inputs (fitting/kv_ranges.py).
// TOKEN-LABEL: func.func @attention
// TOKEN:         xbar.write %k {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64, kv_range = "token", clip_domain = "value"}
// TOKEN:         xbar.write %o_vt {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64, kv_range = "token", clip_domain = "value"}
// HEAD-LABEL:  func.func @attention
// HEAD:          xbar.write %k {kv_range = "head", kv_percentile = 9.900000e+01 : f64} :
// HEAD:          xbar.write %o_vt {kv_range = "head", kv_percentile = 9.900000e+01 : f64} :
// HEAD-NOT:      kv_scale

// -----

// A long causal attention: K (300 keys x 16) spans 5 column tiles, V^T (16 x 300 keys) 5 row tiles.

func.func @causal_long(%q: tensor<1x2x300x16xf32>) -> tensor<1x2x300x16xf32> {
  %o = attn.sdpa %q, %q, %q {scale = 0.25 : f64, causal = true} : (tensor<1x2x300x16xf32>, tensor<1x2x300x16xf32>, tensor<1x2x300x16xf32>) -> tensor<1x2x300x16xf32> loc("h.0.attn")
  func.return %o : tensor<1x2x300x16xf32>
}

// CHECK-LABEL: func.func @causal_long
// CHECK-NEXT:    xbar.write %q : (tensor<1x2x300x16xf32>) -> !xbar.tiles<1x2x300x16, tile = 64x64, grid = 1x5>
// CHECK-NEXT:    xbar.mvm
// CHECK-NEXT:    attn.softmax %{{[0-9a-z_]+}} {scale = 2.500000e-01 : f64, causal = true}
// CHECK-NEXT:    nn.transpose %q
// CHECK-NEXT:    xbar.write %{{[0-9a-z_]+}} : (tensor<1x2x16x300xf32>) -> !xbar.tiles<1x2x16x300, tile = 64x64, grid = 5x1>
// CHECK-NEXT:    xbar.mvm

// -----

// negative_: a linear whose weight is computed (not a parameter) cannot sit in a static array: it stays
// digital, with a remark. The parameter feeding it is still an ordinary parameter.

func.func @negative_computed_weight(%x: tensor<4x32xf32>, %s: tensor<48x32xf32>) -> tensor<4x48xf32> {
  %w = nn.param @proj.weight : tensor<48x32xf32>
  %ws = nn.mul %w, %s : (tensor<48x32xf32>, tensor<48x32xf32>) -> tensor<48x32xf32>
  %y = nn.linear %x, %ws : (tensor<4x32xf32>, tensor<48x32xf32>) -> tensor<4x48xf32> loc("proj.dyn")
  func.return %y : tensor<4x48xf32>
}

// CHECK-LABEL: func.func @negative_computed_weight
// CHECK-NOT:     xbar.{{(program|write|mvm)}}
// CHECK:         %y = nn.linear %x, %ws
// CHECK-NOT:     xbar.{{(program|write|mvm)}}

// -----

// Multi-query attention (one K/V head broadcast over four query heads): the stored head is written once, and
// the four query heads that read it are stacked as rows of one MVM, then split back for the digital softmax.

func.func @multi_query_heads(%q: tensor<1x4x8x16xf32>, %k: tensor<1x1x8x16xf32>, %v: tensor<1x1x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = true} : (tensor<1x4x8x16xf32>, tensor<1x1x8x16xf32>, tensor<1x1x8x16xf32>) -> tensor<1x4x8x16xf32> loc("mqa.attn")
  func.return %o : tensor<1x4x8x16xf32>
}

// CHECK-LABEL: func.func @multi_query_heads
// CHECK-NEXT:    %o_k_tiles = xbar.write %k : (tensor<1x1x8x16xf32>) -> !xbar.tiles<1x1x8x16, tile = 64x64, grid = 1x1>
// CHECK-NEXT:    %o_q_groups = nn.reshape %q : (tensor<1x4x8x16xf32>) -> tensor<1x1x32x16xf32>
// CHECK-NEXT:    %o_scores = xbar.mvm %o_k_tiles, %o_q_groups : (!xbar.tiles<1x1x8x16, tile = 64x64, grid = 1x1>, tensor<1x1x32x16xf32>) -> tensor<1x1x32x8xf32>
// CHECK-NEXT:    %o_scores_heads = nn.reshape %o_scores : (tensor<1x1x32x8xf32>) -> tensor<1x4x8x8xf32>
// CHECK-NEXT:    %o_probs = attn.softmax %o_scores_heads {scale = 2.500000e-01 : f64, causal = true} : (tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
// CHECK-NEXT:    %o_probs_groups = nn.reshape %o_probs : (tensor<1x4x8x8xf32>) -> tensor<1x1x32x8xf32>
// CHECK-NEXT:    %o_vt = nn.transpose %v {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<1x1x8x16xf32>) -> tensor<1x1x16x8xf32>
// CHECK-NEXT:    %o_v_tiles = xbar.write %o_vt : (tensor<1x1x16x8xf32>) -> !xbar.tiles<1x1x16x8, tile = 64x64, grid = 1x1>
// CHECK-NEXT:    %o_groups = xbar.mvm %o_v_tiles, %o_probs_groups : (!xbar.tiles<1x1x16x8, tile = 64x64, grid = 1x1>, tensor<1x1x32x8xf32>) -> tensor<1x1x32x16xf32>
// CHECK-NEXT:    %o = nn.reshape %o_groups : (tensor<1x1x32x16xf32>) -> tensor<1x4x8x16xf32>
// CHECK-NEXT:    func.return %o

// -----

// Grouped-query attention as Hugging Face writes it (repeat_kv: reshape, broadcast, reshape K and V from two
// heads to four): the crossbar stores the two heads, not the four copies.

func.func @repeat_kv_heads(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %k5 = nn.reshape %k : (tensor<1x2x8x16xf32>) -> tensor<1x2x1x8x16xf32>
  %kb = nn.broadcast_to %k5 : (tensor<1x2x1x8x16xf32>) -> tensor<1x2x2x8x16xf32>
  %kr = nn.reshape %kb : (tensor<1x2x2x8x16xf32>) -> tensor<1x4x8x16xf32>
  %v5 = nn.reshape %v : (tensor<1x2x8x16xf32>) -> tensor<1x2x1x8x16xf32>
  %vb = nn.broadcast_to %v5 : (tensor<1x2x1x8x16xf32>) -> tensor<1x2x2x8x16xf32>
  %vr = nn.reshape %vb : (tensor<1x2x2x8x16xf32>) -> tensor<1x4x8x16xf32>
  %o = attn.sdpa %q, %kr, %vr {scale = 0.25 : f64, causal = true} : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> loc("gqa.attn")
  func.return %o : tensor<1x4x8x16xf32>
}

// CHECK-LABEL: func.func @repeat_kv_heads
// CHECK-NOT:     nn.broadcast_to
// CHECK:         %o_k_tiles = xbar.write %k : (tensor<1x2x8x16xf32>) -> !xbar.tiles<1x2x8x16, tile = 64x64, grid = 1x1>
// CHECK-NEXT:    %o_q_groups = nn.reshape %q : (tensor<1x4x8x16xf32>) -> tensor<1x2x16x16xf32>
// CHECK:         %o_v_tiles = xbar.write %o_vt : (tensor<1x2x16x8xf32>) -> !xbar.tiles<1x2x16x8, tile = 64x64, grid = 1x1>
// CHECK:         %o = nn.reshape %o_groups : (tensor<1x2x16x16xf32>) -> tensor<1x4x8x16xf32>

// -----

// negative_: K/V broadcast over the batch (one stored matrix for two sequences) is not a head grouping; it
// stays digital, with a remark.

func.func @negative_broadcast_batch(%q: tensor<2x4x8x16xf32>, %k: tensor<1x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %k {scale = 0.25 : f64, causal = true} : (tensor<2x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<2x4x8x16xf32> loc("shared.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @negative_broadcast_batch
// CHECK-NOT:     xbar.{{(program|write|mvm)}}
// CHECK:         %o = attn.sdpa %q, %k, %k
// CHECK-NOT:     xbar.{{(program|write|mvm)}}

// An attention that stays digital keeps its clips, which then act in value units.
// CLIP-LABEL: func.func @negative_broadcast_batch
// CLIP-NEXT:    %k_clip = attn.kv_clip %k
// CLIP-NEXT:    %k_clip_1 = attn.kv_clip %k
// CLIP-NEXT:    attn.sdpa %q, %k_clip, %k_clip_1

// -----

// A weight attn-prune pruned (its attn.prune record) is programmed with skip_zero_tiles: its all-zero tiles
// are left out. attnc-opt has no weights, so the count (zero_tiles) is left to the compile driver; the
// unpruned weight is programmed whole. skip-zero-tiles=false programs every tile.

func.func @pruned(%x: tensor<1x4x128xf32>) -> (tensor<1x4x128xf32>, tensor<1x4x128xf32>) {
  %wq = nn.param @q.weight {attn.prune = {method = "wanda", sparsity = 9.000000e-01 : f64, granularity = "unstructured", role = "query", status = "applied", achieved = 9.000000e-01 : f64}} : tensor<128x128xf32>
  %wv = nn.param @v.weight : tensor<128x128xf32>
  %q = nn.linear %x, %wq : (tensor<1x4x128xf32>, tensor<128x128xf32>) -> tensor<1x4x128xf32>
  %v = nn.linear %x, %wv : (tensor<1x4x128xf32>, tensor<128x128xf32>) -> tensor<1x4x128xf32>
  func.return %q, %v : tensor<1x4x128xf32>, tensor<1x4x128xf32>
}

// CHECK-LABEL: func.func @pruned
// CHECK:         %wq_tiles = xbar.program %wq {skip_zero_tiles} : (tensor<128x128xf32>) -> !xbar.tiles<128x128, tile = 64x64, grid = 2x2>
// CHECK:         %wv_tiles = xbar.program %wv : (tensor<128x128xf32>)
// NOSKIP-LABEL:  func.func @pruned
// NOSKIP:          %wq_tiles = xbar.program %wq : (tensor<128x128xf32>)
// NOSKIP:          %wv_tiles = xbar.program %wv : (tensor<128x128xf32>)
