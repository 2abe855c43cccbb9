// RUN: attnc-opt %s -p lower-to-tinycl --split-input-file --print-debuginfo 2>%t.err | filecheck %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'lower-to-tinycl{total-bits=8 frac-bits=4 rounding=stochastic overflow=wrap pe-rows=4 pe-cols=8 sram-kb=64 snake=false weight-frac-bits=6}' --split-input-file | filecheck --check-prefix=OPTS %s
// RUN: attnc-opt %s -p 'lower-to-tinycl{total-bits=8 frac-bits=7}' --split-input-file 2>%t.noone | filecheck --check-prefix=NOONE %s
// RUN: filecheck --check-prefix=NOONEREMARK %s < %t.noone
// RUN: not attnc-opt %s -p 'lower-to-tinycl{total-bits=1 frac-bits=0}' 2>&1 | filecheck --check-prefix=BADTOTAL %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{total-bits=16 frac-bits=16}' 2>&1 | filecheck --check-prefix=BADFRAC %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{rounding=up}' 2>&1 | filecheck --check-prefix=BADROUND %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{prob-frac-bits=15}' 2>&1 | filecheck --check-prefix=BADPROB %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{score-frac-bits=16}' 2>&1 | filecheck --check-prefix=BADSCORE %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{loss-scale=0}' 2>&1 | filecheck --check-prefix=BADSCALE %s
// RUN: attnc-opt %s -p 'lower-to-tinycl{prob-frac-bits=8 score-frac-bits=6}' --split-input-file | filecheck --check-prefix=CLASSES %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{overflow=clip}' 2>&1 | filecheck --check-prefix=BADOVF %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl,lower-to-tinycl' 2>&1 | filecheck --check-prefix=TWICE %s
// RUN: not attnc-opt %s -p 'lower-to-tinycl{sram-kb=16}' --split-input-file 2>&1 | filecheck --check-prefix=SRAM %s

// Bad options are one line each, spelled as on the command line; so is a second lowering.
// BADTOTAL: attnc-opt: error: lower-to-tinycl: total-bits must be in [2, 16], got 1
// BADTOTAL-NOT: Traceback
// BADFRAC:  attnc-opt: error: lower-to-tinycl: frac-bits must be in [0, total-bits) = [0, 16), got 16
// BADROUND: attnc-opt: error: lower-to-tinycl: rounding must be one of nearest-even, truncate, stochastic, got 'up'
// BADPROB:  attnc-opt: error: lower-to-tinycl: prob-frac-bits must be -1 (= total-bits - 2) or in [0, total-bits - 2] = [0, 14], got 15
// BADSCORE: attnc-opt: error: lower-to-tinycl: score-frac-bits must be -1 (= frac-bits) or in [0, total-bits) = [0, 16), got 16
// BADSCALE: attnc-opt: error: lower-to-tinycl: loss-scale must be at least 1, got 0
// BADOVF:   attnc-opt: error: lower-to-tinycl: overflow must be one of saturate, wrap, got 'clip'
// TWICE:    attnc-opt: error: lower-to-tinycl: the module is already lowered to TinyCL
// A model whose live on-chip buffers exceed sram-kb names the layer at the peak and the numbers.
// SRAM:     attnc-opt: error: lower-to-tinycl: the model does not fit sram-kb=16 (16384 B): layer 'big' (tinycl.mac) needs 36864 B (36.0 KiB) of live on-chip buffers: y_x_q 16384 B, y_acc 20480 B

// What stays digital says why, once per op, in file order.
// REMARK:      remark: lower-to-tinycl: masked.attn: attn.sdpa stays digital (float on the host): an additive float mask is not supported by the fixed-point softmax (an i1 keep-mask and causal are)
// REMARK-NEXT: remark: lower-to-tinycl: tanh.act: nn.gelu stays digital (float on the host): the table holds exact GELU, not approximate = "tanh"
// REMARK-NEXT: remark: lower-to-tinycl: residual: nn.add is not a TinyCL operator: stays digital (float on the host)

// The configuration lands on the module.
// CHECK: builtin.module attributes {tinycl.config = {total_bits = 16 : i64, frac_bits = 8 : i64, weight_frac_bits = 8 : i64, rounding = "nearest-even", overflow = "saturate", pe_rows = 16 : i64, pe_cols = 16 : i64, sram_kb = 1024 : i64, snake = true}}
// OPTS:  builtin.module attributes {tinycl.config = {total_bits = 8 : i64, frac_bits = 4 : i64, weight_frac_bits = 6 : i64, rounding = "stochastic", overflow = "wrap", pe_rows = 4 : i64, pe_cols = 8 : i64, sram_kb = 64 : i64, snake = false}}

// A linear: input and weight quantized, the bias straight into the accumulator (2·16 + ceil(log2 9) + 1 = 37
// bits, 8 + 8 fractional), one forward MAC, a requantisation; the ReLU after it stays in fixed point (no
// dequantize/quantize pair between them) and is a table.
// CHECK-LABEL: func.func @linear
// CHECK:      %y_x_q = tinycl.quantize %x nearest-even saturate : (tensor<2x5x8xf32>) -> tensor<2x5x8x!tinycl.fixed<16, 8>> loc("fc")
// CHECK-NEXT: %y_w_q = tinycl.quantize %w nearest-even saturate : (tensor<4x8xf32>) -> tensor<4x8x!tinycl.fixed<16, 8>> loc("fc")
// CHECK-NEXT: %y_b_q = tinycl.quantize %b nearest-even saturate : (tensor<4xf32>) -> tensor<4x!tinycl.fixed<37, 16>> loc("fc")
// CHECK-NEXT: %y_acc = tinycl.mac forward %y_x_q, %y_w_q, %y_b_q : (tensor<2x5x8x!tinycl.fixed<16, 8>>, tensor<4x8x!tinycl.fixed<16, 8>>, tensor<4x!tinycl.fixed<37, 16>>) -> tensor<2x5x4x!tinycl.fixed<37, 16>> loc("fc")
// CHECK-NEXT: %y_q = tinycl.requant %y_acc nearest-even saturate : (tensor<2x5x4x!tinycl.fixed<37, 16>>) -> tensor<2x5x4x!tinycl.fixed<16, 8>> loc("fc")
// CHECK-NEXT: %z_q = tinycl.lut %y_q relu : (tensor<2x5x4x!tinycl.fixed<16, 8>>) -> tensor<2x5x4x!tinycl.fixed<16, 8>> loc("act")
// CHECK-NEXT: %z = tinycl.dequantize %z_q : (tensor<2x5x4x!tinycl.fixed<16, 8>>) -> tensor<2x5x4xf32> loc("act")
// CHECK-NOT:  nn.linear
// OPTS-LABEL: func.func @linear
// OPTS:       tinycl.quantize %w stochastic wrap : (tensor<4x8xf32>) -> tensor<4x8x!tinycl.fixed<8, 6>>
// OPTS:       tinycl.mac forward {{.*}} -> tensor<2x5x4x!tinycl.fixed<21, 10>>
// OPTS:       tinycl.requant {{.*}} stochastic wrap : (tensor<2x5x4x!tinycl.fixed<21, 10>>) -> tensor<2x5x4x!tinycl.fixed<8, 4>>
func.func @linear(%x: tensor<2x5x8xf32>) -> tensor<2x5x4xf32> {
  %w = nn.param @fc.weight : tensor<4x8xf32> loc("fc")
  %b = nn.param @fc.bias : tensor<4xf32> loc("fc")
  %y = nn.linear %x, %w, %b : (tensor<2x5x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<2x5x4xf32> loc("fc")
  %z = nn.relu %y : (tensor<2x5x4xf32>) -> tensor<2x5x4xf32> loc("act")
  func.return %z : tensor<2x5x4xf32>
}

// -----
// Attention with two dynamic operands: Q·Kᵀ on the array, the fixed-point softmax (scale and causality
// inside) into the probability format (total - 2 = 14 fractional bits), Vᵀ quantized and P·V on the array.
// CHECK-LABEL: func.func @attention
// CHECK:      %o_q_q = tinycl.quantize %q
// CHECK-NEXT: %o_k_q = tinycl.quantize %k
// CHECK-NEXT: %o_vt = nn.transpose %v {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<1x2x5x8xf32>) -> tensor<1x2x8x5xf32>
// CHECK-NEXT: %o_vt_q = tinycl.quantize %o_vt nearest-even saturate : (tensor<1x2x8x5xf32>) -> tensor<1x2x8x5x!tinycl.fixed<16, 8>>
// CHECK-NEXT: %o_scores_acc = tinycl.mac forward %o_q_q, %o_k_q : (tensor<1x2x5x8x!tinycl.fixed<16, 8>>, tensor<1x2x5x8x!tinycl.fixed<16, 8>>) -> tensor<1x2x5x5x!tinycl.fixed<37, 16>> loc("blocks.0.attn")
// CHECK-NEXT: %o_scores = tinycl.requant %o_scores_acc nearest-even saturate
// CHECK-NEXT: %o_probs = tinycl.softmax %o_scores {scale = 0.35355339059327373 : f64, causal = true} : (tensor<1x2x5x5x!tinycl.fixed<16, 8>>) -> tensor<1x2x5x5x!tinycl.fixed<16, 14>> loc("blocks.0.attn")
// CHECK-NEXT: %o_out_acc = tinycl.mac forward %o_probs, %o_vt_q : (tensor<1x2x5x5x!tinycl.fixed<16, 14>>, tensor<1x2x8x5x!tinycl.fixed<16, 8>>) -> tensor<1x2x5x8x!tinycl.fixed<36, 22>>
// CHECK-NEXT: %o_out_q = tinycl.requant %o_out_acc
// CHECK-NEXT: %o = tinycl.dequantize %o_out_q : (tensor<1x2x5x8x!tinycl.fixed<16, 8>>) -> tensor<1x2x5x8xf32> loc("blocks.0.attn")
// Per-class formats: scores requantised to 16/6, probabilities at 16/8.
// CLASSES-LABEL: func.func @attention
// CLASSES:      %o_scores = tinycl.requant %o_scores_acc nearest-even saturate : (tensor<1x2x5x5x!tinycl.fixed<37, 16>>) -> tensor<1x2x5x5x!tinycl.fixed<16, 6>>
// CLASSES-NEXT: %o_probs = tinycl.softmax %o_scores {scale = 0.35355339059327373 : f64, causal = true} : (tensor<1x2x5x5x!tinycl.fixed<16, 6>>) -> tensor<1x2x5x5x!tinycl.fixed<16, 8>>
// A format without 1.0 (8 bits, 7 fractional) keeps the softmax attention in float, and says so.
// NOONEREMARK: remark: lower-to-tinycl: blocks.0.attn: attn.sdpa stays digital (float on the host): the fixed-point softmax needs 1.0 representable (frac-bits <= total-bits - 2), got !tinycl.fixed<8, 7>
// NOONE-LABEL: func.func @attention
// NOONE:       attn.sdpa
func.func @attention(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> {
  %o = attn.sdpa %q, %k, %v {scale = 0.35355339059327373 : f64, causal = true} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> loc("blocks.0.attn")
  func.return %o : tensor<1x2x5x8xf32>
}

// -----
// A matmul of two dynamic operands (rhs transposed for the forward mode), layer norm, exact GELU.
// CHECK-LABEL: func.func @matmul_norm_gelu
// CHECK:      %m_bt = nn.transpose %b {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<6x4xf32>) -> tensor<4x6xf32> loc("mm")
// CHECK:      %m_acc = tinycl.mac forward %m_a_q, %m_bt_q : (tensor<3x6x!tinycl.fixed<16, 8>>, tensor<4x6x!tinycl.fixed<16, 8>>) -> tensor<3x4x!tinycl.fixed<36, 16>> loc("mm")
// CHECK:      %n_q = tinycl.layer_norm %m_q, %n_g_q, %n_b_q {eps = 1.000000e-05 : f64, rounding = "nearest-even", overflow = "saturate"}
// CHECK-NEXT: %e_q = tinycl.lut %n_q gelu
// CHECK-NEXT: %e = tinycl.dequantize %e_q
func.func @matmul_norm_gelu(%a: tensor<3x6xf32>, %b: tensor<6x4xf32>) -> tensor<3x4xf32> {
  %m = nn.matmul %a, %b : (tensor<3x6xf32>, tensor<6x4xf32>) -> tensor<3x4xf32> loc("mm")
  %g = nn.param @ln.weight : tensor<4xf32> loc("ln")
  %bb = nn.param @ln.bias : tensor<4xf32> loc("ln")
  %n = nn.layer_norm %m affine %g, %bb {normalized_shape = array<i64: 4>, eps = 1.0e-05 : f64} : (tensor<3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<3x4xf32> loc("ln")
  %e = nn.gelu %n {approximate = "none"} : (tensor<3x4xf32>) -> tensor<3x4xf32> loc("act")
  func.return %e : tensor<3x4xf32>
}

// -----
// negative: an attention with an additive mask, tanh-GELU and an add stay as they were (remarks above).
// CHECK-LABEL: func.func @negative_digital
// CHECK-NEXT:  %o = attn.sdpa %q, %q, %q mask %mask
// CHECK-NEXT:  %t = nn.gelu %o {approximate = "tanh"}
// CHECK-NEXT:  %s = nn.add %t, %q
func.func @negative_digital(%q: tensor<1x2x5x8xf32>, %mask: tensor<1x1x5x5xf32>) -> tensor<1x2x5x8xf32> {
  %o = attn.sdpa %q, %q, %q mask %mask {scale = 0.35355339059327373 : f64, causal = false} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x1x5x5xf32>) -> tensor<1x2x5x8xf32> loc("masked.attn")
  %t = nn.gelu %o {approximate = "tanh"} : (tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> loc("tanh.act")
  %s = nn.add %t, %q : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) -> tensor<1x2x5x8xf32> loc("residual")
  func.return %s : tensor<1x2x5x8xf32>
}

// -----
// 16 KiB of input codes and 20 KiB of accumulator: fits the default 1024 KiB, not sram-kb=16 (SRAM above).
// CHECK-LABEL: func.func @big_linear
// CHECK:       tinycl.mac forward
func.func @big_linear(%x: tensor<128x64xf32>) -> tensor<128x32xf32> {
  %w = nn.param @big.weight : tensor<32x64xf32> loc("big")
  %y = nn.linear %x, %w : (tensor<128x64xf32>, tensor<32x64xf32>) -> tensor<128x32xf32> loc("big")
  func.return %y : tensor<128x32xf32>
}

// -----
// An i1 keep-mask (key padding) goes into the fixed-point softmax.
// CHECK-LABEL: func.func @padding_mask
// CHECK:       %o_probs = tinycl.softmax %o_scores mask %keep {scale = 0.35355339059327373 : f64, causal = false} : (tensor<1x2x5x5x!tinycl.fixed<16, 8>>, tensor<1x1x1x5xi1>) -> tensor<1x2x5x5x!tinycl.fixed<16, 14>>
func.func @padding_mask(%q: tensor<1x2x5x8xf32>, %keep: tensor<1x1x1x5xi1>) -> tensor<1x2x5x8xf32> {
  %o = attn.sdpa %q, %q, %q mask %keep {scale = 0.35355339059327373 : f64, causal = false} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x1x1x5xi1>) -> tensor<1x2x5x8xf32> loc("padded.attn")
  func.return %o : tensor<1x2x5x8xf32>
}

// -----
// Bidirectional cosine attention: row L2 norms of Q and K, the (dv x d) state (N(K)ᵀV)ᵀ and N(Q)·state on the
// array (both linear in the length), the per-head divisor max(1, L^sigmoid(m)) from m. Causal cosine stays.
// CHECK-LABEL: func.func @cosine
// CHECK:       %o_qn = tinycl.l2_normalize %o_q_q : (tensor<1x2x5x8x!tinycl.fixed<16, 8>>) -> tensor<1x2x5x8x!tinycl.fixed<16, 8>>
// CHECK:       %o_kn = tinycl.l2_normalize %o_k_q
// CHECK:       %o_state_acc = tinycl.mac forward %o_vt_q, %o_knt : (tensor<1x2x8x5x!tinycl.fixed<16, 8>>, tensor<1x2x8x5x!tinycl.fixed<16, 8>>) -> tensor<1x2x8x8x!tinycl.fixed<36, 16>>
// CHECK:       %o_out_acc = tinycl.mac forward %o_qn, %o_state : (tensor<1x2x5x8x!tinycl.fixed<16, 8>>, tensor<1x2x8x8x!tinycl.fixed<16, 8>>) -> tensor<1x2x5x8x!tinycl.fixed<37, 16>>
// CHECK:       %o_scaled = tinycl.head_scale %o_out_q, %m {length = 5 : i64, rounding = "nearest-even", overflow = "saturate"} : (tensor<1x2x5x8x!tinycl.fixed<16, 8>>, tensor<2xf32>) -> tensor<1x2x5x8x!tinycl.fixed<16, 8>>
// CHECK-NEXT:  %o = tinycl.dequantize %o_scaled
// CHECK:       %c = attn.cosine %q, %k, %v, %m {causal = true, form = "chunked"}
// REMARK-NEXT: remark: lower-to-tinycl: cos.causal: attn.cosine stays digital (float on the host): only bidirectional cosine attention without a mask is lowered
func.func @cosine(%q: tensor<1x2x5x8xf32>, %k: tensor<1x2x5x8xf32>, %v: tensor<1x2x5x8xf32>) -> (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>) {
  %m = nn.param @attn.m : tensor<2xf32> loc("cos.attn")
  %o = attn.cosine %q, %k, %v, %m {causal = false, form = "chunked"} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<2xf32>) -> tensor<1x2x5x8xf32> loc("cos.attn")
  %c = attn.cosine %q, %k, %v, %m {causal = true, form = "chunked"} : (tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>, tensor<2xf32>) -> tensor<1x2x5x8xf32> loc("cos.causal")
  func.return %o, %c : tensor<1x2x5x8xf32>, tensor<1x2x5x8xf32>
}
// REMARK-NOT:  remark
