// RUN: attnc-opt %s -p abft-weave --split-input-file --print-debuginfo | filecheck %s
// RUN: attnc-opt %s -p 'abft-weave{check=per-gemm tol=1.0e-03 block=32 on-fault=recompute}' --split-input-file | filecheck --check-prefix=GEMM %s
// RUN: attnc-opt %s -p 'abft-weave{check=both on-fault=count}' --split-input-file | filecheck --check-prefix=BOTH %s
// RUN: attnc-opt %s -p 'abft-weave{linear=true}' --split-input-file --print-debuginfo 2>%t.err | filecheck --check-prefix=LINEAR %s
// RUN: filecheck --check-prefix=REMARK %s < %t.err
// RUN: attnc-opt %s -p 'abft-weave{layers="layer[.]1[.]" linear=true}' --split-input-file | filecheck --check-prefix=LAYERS %s
// RUN: attnc-opt %s -p 'abft-weave,abft-weave{check=per-gemm}' --split-input-file | filecheck --check-prefix=TWICE %s
// RUN: not attnc-opt %s -p 'abft-weave{check=crc}' 2>&1 | filecheck --check-prefix=BADCHECK %s
// RUN: not attnc-opt %s -p 'abft-weave{on-fault=ignore}' 2>&1 | filecheck --check-prefix=BADPOLICY %s
// RUN: not attnc-opt %s -p 'abft-weave{tol=0.0}' 2>&1 | filecheck --check-prefix=BADTOL %s
// RUN: not attnc-opt %s -p 'abft-weave{block=0}' 2>&1 | filecheck --check-prefix=BADBLOCK %s

// Bad option values are one error line naming the pass and the option, and print no IR.
// BADCHECK-NOT:  builtin.module
// BADCHECK:      attnc-opt: error: abft-weave: check must be one of flash, per-gemm, both, got 'crc'
// BADPOLICY:     attnc-opt: error: abft-weave: on-fault must be one of raise, recompute, count, got 'ignore'
// BADTOL:        attnc-opt: error: abft-weave: tol is relative and must be in (0, 0.5], got 0.0
// BADBLOCK:      attnc-opt: error: abft-weave: block must be at least 1 key, got 0

// Softmax attention becomes checked attention: same operands, mask, scale, causal and location; the check,
// tolerance, block and policy are printed before the attributes.

func.func @masked(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m: tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %o = attn.sdpa %q, %k, %v mask %m {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x8x8xf32>) -> tensor<2x4x8x16xf32> loc("layer.0.attn")
  func.return %o : tensor<2x4x8x16xf32>
}

// CHECK-LABEL: func.func @masked
// CHECK-NEXT:    %o = abft.sdpa "flash" %q, %k, %v mask %m tol 1.000000e-05 : f64 block 128 : i64 on_fault "raise" {scale = 2.500000e-01 : f64, causal = false} : {{.*}} loc("layer.0.attn")
// CHECK-NEXT:    func.return %o
// CHECK-NOT:     attn.sdpa

// GEMM-LABEL: func.func @masked
// GEMM-NEXT:    abft.sdpa "per-gemm" %q, %k, %v mask %m tol 1.000000e-03 : f64 block 32 : i64 on_fault "recompute"

// BOTH-LABEL: func.func @masked
// BOTH-NEXT:    abft.sdpa "both" %q, %k, %v mask %m tol 1.000000e-05 : f64 block 128 : i64 on_fault "count"

// LAYERS-LABEL: func.func @masked
// LAYERS-NEXT:    attn.sdpa %q, %k, %v mask %m

// -----

// A transformer block: with linear=true every linear whose weight is a static parameter is checked too;
// causal attention stays causal.

func.func @block(%x: tensor<1x8x16xf32>, %q: tensor<1x2x8x8xf32>, %k: tensor<1x2x8x8xf32>, %v: tensor<1x2x8x8xf32>) -> (tensor<1x8x16xf32>, tensor<1x2x8x8xf32>) {
  %w = nn.param @layer.1.proj.weight : tensor<16x16xf32> loc("layer.1.proj")
  %b = nn.param @layer.1.proj.bias : tensor<16xf32> loc("layer.1.proj")
  %y = nn.linear %x, %w, %b : (tensor<1x8x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<1x8x16xf32> loc("layer.1.proj")
  %o = attn.sdpa %q, %k, %v {scale = 0.35355339059327373 : f64, causal = true} : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32> loc("layer.1.attn")
  func.return %y, %o : tensor<1x8x16xf32>, tensor<1x2x8x8xf32>
}

// CHECK-LABEL: func.func @block
// CHECK:         nn.linear %x, %w, %b
// CHECK:         abft.sdpa "flash" %q, %k, %v tol 1.000000e-05 : f64 block 128 : i64 on_fault "raise" {scale = 0.35355339059327373 : f64, causal = true}

// LINEAR-LABEL: func.func @block
// LINEAR:         %y = abft.linear %x, %w, %b tol 1.000000e-05 : f64 on_fault "raise" : (tensor<1x8x16xf32>, tensor<16x16xf32>, tensor<16xf32>) -> tensor<1x8x16xf32> loc("layer.1.proj")
// LINEAR-NEXT:    %o = abft.sdpa "flash"

// LAYERS-LABEL: func.func @block
// LAYERS:         abft.linear %x, %w, %b
// LAYERS-NEXT:    abft.sdpa "flash"

// -----

// negative_: a linear whose weight is computed (not a parameter) is left unchecked, with a remark.

func.func @negative_dynamic_weight(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> tensor<4x8xf32> {
  %y = nn.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc("model.adapter")
  func.return %y : tensor<4x8xf32>
}

// REMARK:       remark: abft-weave: model.adapter: linear left unchecked: its weight is computed, not a static parameter
// REMARK-NEXT:  remark: abft-weave: capped.attn: soft-capped scores: the checked kernel has no soft-cap; left unchecked
// LINEAR-LABEL: func.func @negative_dynamic_weight
// LINEAR-NEXT:    nn.linear %x, %w
// LINEAR-NOT:     abft.linear

// -----

// negative_: already checked attention is left as it is (idempotent, even under other options); cosine
// attention has no softmax to check; plain matmuls are not linears.

func.func @negative_already_checked(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %m: tensor<2xf32>) -> (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>) {
  %o = attn.sdpa %q, %k, %v {scale = 0.25 : f64, causal = false} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  %c = attn.cosine %q, %k, %v, %m {causal = false, form = "chunked"} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<2xf32>) -> tensor<1x2x8x16xf32>
  %kt = nn.transpose %k {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<1x2x8x16xf32>) -> tensor<1x2x16x8xf32>
  %s = nn.matmul %q, %kt : (tensor<1x2x8x16xf32>, tensor<1x2x16x8xf32>) -> tensor<1x2x8x8xf32>
  func.return %o, %c, %s : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x8xf32>
}

// TWICE-LABEL: func.func @negative_already_checked
// TWICE-NEXT:    %o = abft.sdpa "flash"
// TWICE-NEXT:    %c = attn.cosine %q, %k, %v, %m
// TWICE-NEXT:    nn.transpose
// TWICE-NEXT:    %s = nn.matmul %q, %kt
// TWICE-NOT:     abft.

// -----

// Soft-capped attention (Gemma-2) has no checked kernel: it stays attn.sdpa, with a remark.

func.func @soft_capped(%q: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %o = attn.sdpa %q, %q, %q {scale = 0.25 : f64, causal = true, softcap = 50.0 : f64} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> loc("capped.attn")
  func.return %o : tensor<1x2x4x8xf32>
}

// CHECK-LABEL: func.func @soft_capped
// CHECK-NOT:     abft.sdpa
// CHECK:         %o = attn.sdpa %q, %q, %q {scale = 2.500000e-01 : f64, causal = true, softcap = 5.000000e+01 : f64}
