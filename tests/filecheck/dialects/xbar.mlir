// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s --print-op-generic --print-debuginfo | attnc-opt --print-op-generic --print-debuginfo | filecheck %s --check-prefix=GENERIC

// Round trip of the xbar dialect in its custom form (parse, print, re-parse, print again; both prints
// identical) and in its generic form with locations: xbar.program of a static matrix, xbar.write of a
// batched dynamic matrix with and without ClipFormer attributes, xbar.mvm on 2-d tiles with a 3-d input
// and on batched tiles; and !xbar.tiles written without its grid, printed with the derived one
// (row tiles over `in` x column tiles over `out`, the shape being (..., out, in)).

// A non-square matrix and a non-square tile pin the orientation: in = 384 over 128-row tiles gives 3 row
// tiles, out = 1536 over 64-column tiles gives 24 column tiles.
// CHECK-LABEL: func.func @program(
// GENERIC-LABEL: "func.func"() <{sym_name = "program"
func.func @program(%w: tensor<1536x384xf32>) {
  // GENERIC-NEXT: ^bb0(%w: tensor<1536x384xf32> loc(unknown)):
  %t = xbar.program %w : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 128x64, grid = 3x24>
  // CHECK-NEXT:   %t = xbar.program %w : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 128x64, grid = 3x24>{{$}}
  // GENERIC-NEXT: %t = "xbar.program"(%w) : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 128x64, grid = 3x24> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// One K per batch item and head; the clipped write carries its module path as location.
// CHECK-LABEL: func.func @write(
// GENERIC-LABEL: "func.func"() <{sym_name = "write"
func.func @write(%k: tensor<1x12x16x32xf32>) {
  // GENERIC-NEXT: ^bb0(%k: tensor<1x12x16x32xf32> loc(unknown)):
  %t = xbar.write %k : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
  // CHECK-NEXT:   %t = xbar.write %k : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>{{$}}
  // GENERIC-NEXT: %t = "xbar.write"(%k) : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1> loc(unknown)
  %tc = xbar.write %k {clip_alpha = 2.0 : f64, clip_beta = 0.25 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1> loc("encoder.layer.0.attention.self")
  // CHECK-NEXT:   %tc = xbar.write %k {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>{{$}}
  // GENERIC-NEXT: %tc = "xbar.write"(%k) {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1> loc("encoder.layer.0.attention.self")
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// A calibrated ADC range: one full-scale per (row tile, slice, column tile), set at compile time.
// CHECK-LABEL: func.func @calibrated_adc(
// GENERIC-LABEL: "func.func"() <{sym_name = "calibrated_adc"
func.func @calibrated_adc(%k: tensor<1x12x16x32xf32>, %w: tensor<100x130xf32>) {
  // GENERIC-NEXT: ^bb0(%k: tensor<1x12x16x32xf32> loc(unknown), %w: tensor<100x130xf32> loc(unknown)):
  %t = xbar.write %k {adc_full_scale = dense<[[[1.5], [2.0], [0.5], [0.25]]]> : tensor<1x4x1xf32>} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
  // CHECK-NEXT:   %t = xbar.write %k {adc_full_scale = dense<{{\[\[\[}}1.500000e+00], [2.000000e+00], [5.000000e-01], [2.500000e-01]]]> : tensor<1x4x1xf32>} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>{{$}}
  // GENERIC-NEXT: %t = "xbar.write"(%k) {adc_full_scale = dense<{{\[\[\[}}1.500000e+00], [2.000000e+00], [5.000000e-01], [2.500000e-01]]]> : tensor<1x4x1xf32>} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1> loc(unknown)
  %p = xbar.program %w {adc_full_scale = dense<1.0> : tensor<3x4x2xf32>} : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 64x64, grid = 3x2>
  // CHECK-NEXT:   %p = xbar.program %w {adc_full_scale = dense<1.000000e+00> : tensor<3x4x2xf32>} : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 64x64, grid = 3x2>{{$}}
  // GENERIC-NEXT: %p = "xbar.program"(%w) {adc_full_scale = dense<1.000000e+00> : tensor<3x4x2xf32>} : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 64x64, grid = 3x2> loc(unknown)
  func.return
  // CHECK-NEXT:   func.return
  // GENERIC-NEXT: "func.return"() : () -> () loc(unknown)
}

// 2-d tiles take any (..., in): y = x W^T has the input's leading dims and out features.
// CHECK-LABEL: func.func @mvm(
// GENERIC-LABEL: "func.func"() <{sym_name = "mvm"
func.func @mvm(%w: tensor<1536x384xf32>, %h: tensor<1x16x384xf32>) -> tensor<1x16x1536xf32> {
  // GENERIC-NEXT: ^bb0(%w: tensor<1536x384xf32> loc(unknown), %h: tensor<1x16x384xf32> loc(unknown)):
  %t = xbar.program %w : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 64x64, grid = 6x24>
  // CHECK-NEXT:   %t = xbar.program %w : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 64x64, grid = 6x24>{{$}}
  // GENERIC-NEXT: %t = "xbar.program"(%w) : (tensor<1536x384xf32>) -> !xbar.tiles<1536x384, tile = 64x64, grid = 6x24> loc(unknown)
  %y = xbar.mvm %t, %h : (!xbar.tiles<1536x384, tile = 64x64, grid = 6x24>, tensor<1x16x384xf32>) -> tensor<1x16x1536xf32>
  // CHECK-NEXT:   %y = xbar.mvm %t, %h : (!xbar.tiles<1536x384, tile = 64x64, grid = 6x24>, tensor<1x16x384xf32>) -> tensor<1x16x1536xf32>{{$}}
  // GENERIC-NEXT: %y = "xbar.mvm"(%t, %h) : (!xbar.tiles<1536x384, tile = 64x64, grid = 6x24>, tensor<1x16x384xf32>) -> tensor<1x16x1536xf32> loc(unknown)
  func.return %y : tensor<1x16x1536xf32>
  // CHECK-NEXT:   func.return %y : tensor<1x16x1536xf32>
  // GENERIC-NEXT: "func.return"(%y) : (tensor<1x16x1536xf32>) -> () loc(unknown)
}

// Batched tiles (batch..., out, in) take (batch..., M, in): the scores S = Q K^T, one K per batch item and head.
// CHECK-LABEL: func.func @mvm_batched(
// GENERIC-LABEL: "func.func"() <{sym_name = "mvm_batched"
func.func @mvm_batched(%k: tensor<2x12x16x32xf32>, %q: tensor<2x12x9x32xf32>) -> tensor<2x12x9x16xf32> {
  // GENERIC-NEXT: ^bb0(%k: tensor<2x12x16x32xf32> loc(unknown), %q: tensor<2x12x9x32xf32> loc(unknown)):
  %t = xbar.write %k : (tensor<2x12x16x32xf32>) -> !xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>
  // CHECK-NEXT:   %t = xbar.write %k : (tensor<2x12x16x32xf32>) -> !xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>{{$}}
  // GENERIC-NEXT: %t = "xbar.write"(%k) : (tensor<2x12x16x32xf32>) -> !xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1> loc(unknown)
  %s = xbar.mvm %t, %q : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x16xf32>
  // CHECK-NEXT:   %s = xbar.mvm %t, %q : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x16xf32>{{$}}
  // GENERIC-NEXT: %s = "xbar.mvm"(%t, %q) : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<2x12x9x32xf32>) -> tensor<2x12x9x16xf32> loc(unknown)
  func.return %s : tensor<2x12x9x16xf32>
  // CHECK-NEXT:   func.return %s : tensor<2x12x9x16xf32>
  // GENERIC-NEXT: "func.return"(%s) : (tensor<2x12x9x16xf32>) -> () loc(unknown)
}

// The grid may be left out (it is derived): 100x384 in 64x64 tiles prints grid = 6x2 (ceil(384/64) row
// tiles x ceil(100/64) column tiles), 100x384 in 128x32 tiles grid = 3x4, also in function signatures.
// CHECK-LABEL: func.func @derived_grid(
// CHECK-SAME:    %w: tensor<100x384xf32>) -> (!xbar.tiles<100x384, tile = 64x64, grid = 6x2>, !xbar.tiles<100x384, tile = 128x32, grid = 3x4>) {
// GENERIC-LABEL: "func.func"() <{sym_name = "derived_grid", function_type = (tensor<100x384xf32>) -> (!xbar.tiles<100x384, tile = 64x64, grid = 6x2>, !xbar.tiles<100x384, tile = 128x32, grid = 3x4>)}>
func.func @derived_grid(%w: tensor<100x384xf32>) -> (!xbar.tiles<100x384, tile = 64x64>, !xbar.tiles<100x384, tile = 128x32>) {
  // GENERIC-NEXT: ^bb0(%w: tensor<100x384xf32> loc(unknown)):
  %t = xbar.program %w : (tensor<100x384xf32>) -> !xbar.tiles<100x384, tile = 64x64>
  // CHECK-NEXT:   %t = xbar.program %w : (tensor<100x384xf32>) -> !xbar.tiles<100x384, tile = 64x64, grid = 6x2>{{$}}
  // GENERIC-NEXT: %t = "xbar.program"(%w) : (tensor<100x384xf32>) -> !xbar.tiles<100x384, tile = 64x64, grid = 6x2> loc(unknown)
  %u = xbar.program %w : (tensor<100x384xf32>) -> !xbar.tiles<100x384, tile = 128x32>
  // CHECK-NEXT:   %u = xbar.program %w : (tensor<100x384xf32>) -> !xbar.tiles<100x384, tile = 128x32, grid = 3x4>{{$}}
  // GENERIC-NEXT: %u = "xbar.program"(%w) : (tensor<100x384xf32>) -> !xbar.tiles<100x384, tile = 128x32, grid = 3x4> loc(unknown)
  func.return %t, %u : !xbar.tiles<100x384, tile = 64x64>, !xbar.tiles<100x384, tile = 128x32>
  // CHECK-NEXT:   func.return %t, %u : !xbar.tiles<100x384, tile = 64x64, grid = 6x2>, !xbar.tiles<100x384, tile = 128x32, grid = 3x4>
  // GENERIC-NEXT: "func.return"(%t, %u) : (!xbar.tiles<100x384, tile = 64x64, grid = 6x2>, !xbar.tiles<100x384, tile = 128x32, grid = 3x4>) -> () loc(unknown)
}
