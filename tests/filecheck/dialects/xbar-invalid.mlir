// RUN: attnc-opt %s --split-input-file --verify-diagnostics --parsing-diagnostics | filecheck %s
// RUN: not attnc-opt %s --split-input-file 2>&1 | filecheck %s --check-prefix=GRID

// One case per diagnostic of the xbar dialect (dialects/xbar.py): the !xbar.tiles parser (TilesType.verify
// repeats its positivity checks for types built in Python; text never gets past the parser with them), _verify_stored (shared by xbar.program
// and xbar.write), xbar.program, xbar.write and xbar.mvm. Each op case checks the diagnostic, the op it
// is attached to, and that the annotated op carries the same message. The first case must stay first:
// the GRID run stops at it.
// (_tiles_type's "expected an !xbar.tiles operand" cannot be reached from IR: the IRDL constraints on
// the tiles operand and results reject a non-tiles type before the custom verifiers run.)

// !xbar.tiles parser: "grid ... does not match the shape and tile size (expected ...)" (grid given as
// out x in instead of in x out). Also checked through attnc-opt's own error path (GRID): exit status 1,
// one line with the location and the message, no traceback and no IR.
func.func @grid_mismatch(%a: !xbar.tiles<100x384, tile = 64x64, grid = 2x6>) {
  func.return
}
// CHECK:      grid 2x6 does not match the shape and tile size (expected 6x2)
// GRID:       attnc-opt: error: {{.*}}xbar-invalid.mlir:[[# @LINE - 4]]:{{[0-9]+}}: grid 2x6 does not match the shape and tile size (expected 6x2)
// GRID-NOT:   {{.}}

// -----
// !xbar.tiles parser: "expected !xbar.tiles<DIMSxOUTxIN, tile = ROWSxCOLS[, grid = RxC]>" (a rank-1 shape)
func.func @tiles_rank(%a: !xbar.tiles<384, tile = 64x64>) {
  func.return
}
// CHECK:      expected !xbar.tiles<DIMSxOUTxIN, tile = ROWSxCOLS[, grid = RxC]>

// -----
// !xbar.tiles parser: the same message for a tile size that is not rows x cols
func.func @tile_rank(%a: !xbar.tiles<384x384, tile = 64x64x2>) {
  func.return
}
// CHECK:      expected !xbar.tiles<DIMSxOUTxIN, tile = ROWSxCOLS[, grid = RxC]>

// -----
// !xbar.tiles parser: "xbar.tiles needs static, positive dims and tile size, got ..." (a zero dim)
func.func @tiles_empty(%a: !xbar.tiles<2x0x384, tile = 64x64>) {
  func.return
}
// CHECK:      xbar.tiles needs static, positive dims and tile size, got 2x0x384 and tile 64x64

// -----
// The same message for a zero tile size, checked before the grid is derived (no division by zero)
func.func @tile_empty(%a: !xbar.tiles<384x384, tile = 64x0, grid = 6x6>) {
  func.return
}
// CHECK:      xbar.tiles needs static, positive dims and tile size, got 384x384 and tile 64x0

// -----
// The same message for a dynamic dim: crossbars hold static matrices
func.func @tiles_dynamic(%a: !xbar.tiles<?x384, tile = 64x64>) {
  func.return
}
// CHECK:      xbar.tiles needs static, positive dims and tile size, got ?x384 and tile 64x64

// -----
// _verify_stored: "<op> stores a floating-point matrix, got ..."
func.func @program_integer(%w: tensor<384x128xi32>) {
  %t = xbar.program %w : (tensor<384x128xi32>) -> !xbar.tiles<384x128, tile = 64x64>
  func.return
}
// CHECK:      xbar.program stores a floating-point matrix, got i32
// CHECK:      %t = "xbar.program"(%w) : (tensor<384x128xi32>) -> !xbar.tiles<384x128, tile = 64x64, grid = 2x6>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: xbar.program stores a floating-point matrix, got i32

// -----
// _verify_stored: the same message from xbar.write
func.func @write_integer(%k: tensor<1x12x16x32xi8>) {
  %t = xbar.write %k : (tensor<1x12x16x32xi8>) -> !xbar.tiles<1x12x16x32, tile = 64x64>
  func.return
}
// CHECK:      xbar.write stores a floating-point matrix, got i8
// CHECK:      %t = "xbar.write"(%k) : (tensor<1x12x16x32xi8>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: xbar.write stores a floating-point matrix, got i8

// -----
// _verify_stored: "the tiles hold ... but the matrix is ..." (out and in swapped)
func.func @stored_shape(%w: tensor<384x128xf32>) {
  %t = xbar.program %w : (tensor<384x128xf32>) -> !xbar.tiles<128x384, tile = 64x64>
  func.return
}
// CHECK:      the tiles hold 128x384 but the matrix is 384x128
// CHECK:      %t = "xbar.program"(%w) : (tensor<384x128xf32>) -> !xbar.tiles<128x384, tile = 64x64, grid = 6x2>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: the tiles hold 128x384 but the matrix is 384x128

// -----
// _verify_stored: the same message from xbar.write (batch dims differ)
func.func @write_shape(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k : (tensor<1x12x16x32xf32>) -> !xbar.tiles<12x16x32, tile = 64x64>
  func.return
}
// CHECK:      the tiles hold 12x16x32 but the matrix is 1x12x16x32
// CHECK:      %t = "xbar.write"(%k) : (tensor<1x12x16x32xf32>) -> !xbar.tiles<12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: the tiles hold 12x16x32 but the matrix is 1x12x16x32

// -----
// xbar.program: "a static matrix is 2-d (out x in), got ..."
func.func @program_batched(%w: tensor<2x384x384xf32>) {
  %t = xbar.program %w : (tensor<2x384x384xf32>) -> !xbar.tiles<2x384x384, tile = 64x64>
  func.return
}
// CHECK:      a static matrix is 2-d (out x in), got 2x384x384
// CHECK:      %t = "xbar.program"(%w) : (tensor<2x384x384xf32>) -> !xbar.tiles<2x384x384, tile = 64x64, grid = 6x6>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: a static matrix is 2-d (out x in), got 2x384x384

// -----
// xbar.program: "zero_tiles is only meaningful with skip_zero_tiles"
func.func @program_count_without_skip(%w: tensor<384x128xf32>) {
  %t = xbar.program %w {zero_tiles = 3 : i64} : (tensor<384x128xf32>) -> !xbar.tiles<384x128, tile = 64x64>
  func.return
}
// CHECK:      zero_tiles is only meaningful with skip_zero_tiles
// CHECK:      %t = "xbar.program"(%w) {zero_tiles = 3 : i64} : (tensor<384x128xf32>) -> !xbar.tiles<384x128, tile = 64x64, grid = 2x6>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: zero_tiles is only meaningful with skip_zero_tiles

// -----
// xbar.program: "zero_tiles = N is not within the T tiles of the matrix"
func.func @program_count_beyond_tiles(%w: tensor<384x128xf32>) {
  %t = xbar.program %w {skip_zero_tiles, zero_tiles = 13 : i64} : (tensor<384x128xf32>) -> !xbar.tiles<384x128, tile = 64x64>
  func.return
}
// CHECK:      zero_tiles = 13 is not within the 12 tiles of the matrix
// CHECK:      %t = "xbar.program"(%w) {skip_zero_tiles, zero_tiles = 13 : i64} : (tensor<384x128xf32>) -> !xbar.tiles<384x128, tile = 64x64, grid = 2x6>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: zero_tiles = 13 is not within the 12 tiles of the matrix

// -----
// xbar.write: "ClipFormer needs both clip_alpha and clip_beta, or neither"
func.func @write_clip_alpha_only(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k {clip_alpha = 2.0 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64>
  func.return
}
// CHECK:      ClipFormer needs both clip_alpha and clip_beta, or neither
// CHECK:      %t = "xbar.write"(%k) {clip_alpha = 2.000000e+00 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: ClipFormer needs both clip_alpha and clip_beta, or neither

// -----
// xbar.write: the same message with clip_beta alone
func.func @write_clip_beta_only(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k {clip_beta = 0.25 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64>
  func.return
}
// CHECK:      ClipFormer needs both clip_alpha and clip_beta, or neither
// CHECK:      %t = "xbar.write"(%k) {clip_beta = 2.500000e-01 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: ClipFormer needs both clip_alpha and clip_beta, or neither

// -----
// xbar.write: "kv_range must be one of matrix, global, head, token, got 'row'"
func.func @write_bad_range(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {kv_range = "row"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      kv_range must be one of matrix, global, head, token, got 'row'
// CHECK:      %t = "xbar.write"(%k) {kv_range = "row"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_range must be one of matrix, global, head, token, got 'row'

// -----
// xbar.write: "clip_domain is only meaningful with clip_alpha and clip_beta"
func.func @write_domain_without_clip(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {clip_domain = "value"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      clip_domain is only meaningful with clip_alpha and clip_beta
// CHECK:      %t = "xbar.write"(%k) {clip_domain = "value"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clip_domain is only meaningful with clip_alpha and clip_beta

// -----
// xbar.write: "clip_domain must be one of conductance, value, got 'digital'"
func.func @write_bad_domain(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {clip_alpha = 2.0 : f64, clip_beta = 0.25 : f64, clip_domain = "digital"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      clip_domain must be one of conductance, value, got 'digital'
// CHECK:      %t = "xbar.write"(%k) {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.500000e-01 : f64, clip_domain = "digital"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clip_domain must be one of conductance, value, got 'digital'

// -----
// xbar.write: "kv_scale and kv_percentile belong to calibrated ranges (global, head), not 'token'"
func.func @write_scale_on_token(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {kv_range = "token", kv_scale = dense<1.0> : tensor<2xf32>} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      kv_scale and kv_percentile belong to calibrated ranges (global, head), not 'token'
// CHECK:      %t = "xbar.write"(%k) {kv_range = "token", kv_scale = dense<1.000000e+00> : tensor<2xf32>} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_scale and kv_percentile belong to calibrated ranges (global, head), not 'token'

// -----
// xbar.write: "kv_range = 'head' needs the kv_percentile its ranges are calibrated at"
func.func @write_calibrated_without_percentile(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {kv_range = "head"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      kv_range = 'head' needs the kv_percentile its ranges are calibrated at
// CHECK:      %t = "xbar.write"(%k) {kv_range = "head"} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_range = 'head' needs the kv_percentile its ranges are calibrated at

// -----
// xbar.write: "kv_percentile must be in (0, 100], got 0.0"
func.func @write_bad_percentile(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {kv_range = "global", kv_percentile = 0.0 : f64} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      kv_percentile must be in (0, 100], got 0.0
// CHECK:      %t = "xbar.write"(%k) {kv_range = "global", kv_percentile = 0.000000e+00 : f64} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_percentile must be in (0, 100], got 0.0

// -----
// xbar.write: "kv_scale has shape 3; expected 2 (one range per head)"
func.func @write_scale_per_head(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {kv_range = "head", kv_percentile = 99.9 : f64, kv_scale = dense<1.0> : tensor<3xf32>} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      kv_scale has shape 3; expected 2 (one range per head)
// CHECK:      %t = "xbar.write"(%k) {kv_range = "head", kv_percentile = 9.990000e+01 : f64, kv_scale = dense<1.000000e+00> : tensor<3xf32>} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_scale has shape 3; expected 2 (one range per head)

// -----
// xbar.write: "kv_scale holds a non-positive or non-finite range"
func.func @write_scale_positive(%k: tensor<1x2x16x32xf32>) {
  %t = xbar.write %k {kv_range = "head", kv_percentile = 99.9 : f64, kv_scale = dense<[1.0, 0.0]> : tensor<2xf32>} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64>
  func.return
}
// CHECK:      kv_scale holds a non-positive or non-finite range
// CHECK:      %t = "xbar.write"(%k) {kv_range = "head", kv_percentile = 9.990000e+01 : f64, kv_scale = dense<[1.000000e+00, 0.000000e+00]> : tensor<2xf32>} : (tensor<1x2x16x32xf32>) -> !xbar.tiles<1x2x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: kv_scale holds a non-positive or non-finite range

// -----
// xbar.write: "clip_alpha must be >= 0 (a dead zone of alpha·g_min), got ..."
func.func @write_clip_alpha(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k {clip_alpha = -0.5 : f64, clip_beta = 0.25 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64>
  func.return
}
// CHECK:      clip_alpha must be >= 0 (a dead zone of alpha·g_min), got -0.5
// CHECK:      %t = "xbar.write"(%k) {clip_alpha = -5.000000e-01 : f64, clip_beta = 2.500000e-01 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clip_alpha must be >= 0 (a dead zone of alpha·g_min), got -0.5

// -----
// xbar.write: "clip_beta must be in (0, 1] (a ceiling of beta·g_max), got ..." (beta = 0)
func.func @write_clip_beta_zero(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k {clip_alpha = 2.0 : f64, clip_beta = 0.0 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64>
  func.return
}
// CHECK:      clip_beta must be in (0, 1] (a ceiling of beta·g_max), got 0.0
// CHECK:      %t = "xbar.write"(%k) {clip_alpha = 2.000000e+00 : f64, clip_beta = 0.000000e+00 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clip_beta must be in (0, 1] (a ceiling of beta·g_max), got 0.0

// -----
// xbar.write: the same message for clip_beta > 1
func.func @write_clip_beta_above_one(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k {clip_alpha = 2.0 : f64, clip_beta = 2.0 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64>
  func.return
}
// CHECK:      clip_beta must be in (0, 1] (a ceiling of beta·g_max), got 2.0
// CHECK:      %t = "xbar.write"(%k) {clip_alpha = 2.000000e+00 : f64, clip_beta = 2.000000e+00 : f64} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clip_beta must be in (0, 1] (a ceiling of beta·g_max), got 2.0

// -----
// xbar.mvm: "input has ... features, the crossbar holds ... rows"
func.func @mvm_features(%t: !xbar.tiles<384x128, tile = 64x64, grid = 2x6>, %x: tensor<1x16x384xf32>) {
  %y = xbar.mvm %t, %x : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<1x16x384xf32>) -> tensor<1x16x384xf32>
  func.return
}
// CHECK:      input has 384 features, the crossbar holds 128 rows
// CHECK:      %y = "xbar.mvm"(%t, %x) : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<1x16x384xf32>) -> tensor<1x16x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: input has 384 features, the crossbar holds 128 rows

// -----
// xbar.mvm: the same message for a 0-d input
func.func @mvm_scalar_input(%t: !xbar.tiles<384x128, tile = 64x64, grid = 2x6>, %x: tensor<f32>) {
  %y = xbar.mvm %t, %x : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<f32>) -> tensor<384xf32>
  func.return
}
// CHECK:      input has 0 features, the crossbar holds 128 rows
// CHECK:      %y = "xbar.mvm"(%t, %x) : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<f32>) -> tensor<384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: input has 0 features, the crossbar holds 128 rows

// -----
// xbar.mvm: "batched tiles ... need inputs (...xMx...), got ..." (input without the batch dims)
func.func @mvm_batched_rank(%t: !xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, %x: tensor<9x32xf32>) {
  %y = xbar.mvm %t, %x : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<9x32xf32>) -> tensor<9x16xf32>
  func.return
}
// CHECK:      batched tiles 2x12x16x32 need inputs (2x12xMx32), got 9x32
// CHECK:      %y = "xbar.mvm"(%t, %x) : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<9x32xf32>) -> tensor<9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: batched tiles 2x12x16x32 need inputs (2x12xMx32), got 9x32

// -----
// xbar.mvm: the same message for batch dims that differ
func.func @mvm_batched_batch(%t: !xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, %x: tensor<2x4x9x32xf32>) {
  %y = xbar.mvm %t, %x : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      batched tiles 2x12x16x32 need inputs (2x12xMx32), got 2x4x9x32
// CHECK:      %y = "xbar.mvm"(%t, %x) : (!xbar.tiles<2x12x16x32, tile = 64x64, grid = 1x1>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: batched tiles 2x12x16x32 need inputs (2x12xMx32), got 2x4x9x32

// -----
// xbar.mvm: "result must be ..., got ..."
func.func @mvm_result_shape(%t: !xbar.tiles<384x128, tile = 64x64, grid = 2x6>, %x: tensor<1x16x128xf32>) {
  %y = xbar.mvm %t, %x : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<1x16x128xf32>) -> tensor<1x16x128xf32>
  func.return
}
// CHECK:      result must be 1x16x384, got 1x16x128
// CHECK:      %y = "xbar.mvm"(%t, %x) : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<1x16x128xf32>) -> tensor<1x16x128xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result must be 1x16x384, got 1x16x128

// -----
// xbar.mvm: "result element type must be the input's ..."
func.func @mvm_result_type(%t: !xbar.tiles<384x128, tile = 64x64, grid = 2x6>, %x: tensor<1x16x128xbf16>) {
  %y = xbar.mvm %t, %x : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<1x16x128xbf16>) -> tensor<1x16x384xf32>
  func.return
}
// CHECK:      result element type must be the input's bf16
// CHECK:      %y = "xbar.mvm"(%t, %x) : (!xbar.tiles<384x128, tile = 64x64, grid = 2x6>, tensor<1x16x128xbf16>) -> tensor<1x16x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result element type must be the input's bf16

// -----
// verify_adc_full_scale: a calibrated ADC range is one full-scale per (row tile, slice, column tile)
func.func @adc_full_scale_shape(%w: tensor<100x130xf32>) {
  %t = xbar.program %w {adc_full_scale = dense<1.0> : tensor<2x4x3xf32>} : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 64x64, grid = 3x2>
  func.return
}
// CHECK:      adc_full_scale has shape 2x4x3; expected 3x(slices)x2 (row tiles, slices, column tiles)
// CHECK:      %t = "xbar.program"(%w) {adc_full_scale = dense<1.000000e+00> : tensor<2x4x3xf32>} : (tensor<100x130xf32>) -> !xbar.tiles<100x130, tile = 64x64, grid = 3x2>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: adc_full_scale has shape 2x4x3; expected 3x(slices)x2 (row tiles, slices, column tiles)

// -----
// verify_adc_full_scale: full-scales are currents, never negative (the same check on xbar.write)
func.func @adc_full_scale_negative(%k: tensor<1x12x16x32xf32>) {
  %t = xbar.write %k {adc_full_scale = dense<-1.0> : tensor<1x4x1xf32>} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
  func.return
}
// CHECK:      adc_full_scale holds a negative or non-finite value
// CHECK:      %t = "xbar.write"(%k) {adc_full_scale = dense<-1.000000e+00> : tensor<1x4x1xf32>} : (tensor<1x12x16x32xf32>) -> !xbar.tiles<1x12x16x32, tile = 64x64, grid = 1x1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: adc_full_scale holds a negative or non-finite value
