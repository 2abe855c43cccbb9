// RUN: attnc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// One case per verifier message of the nn dialect (dialects/nn.py), plus the shared helpers
// (normalize_dim, expect_result_shape, expect_same_element_type, matmul_shape,
// verify_attention_operands) exercised through several ops. Each case checks the diagnostic, the op it
// is attached to, and that the annotated op carries the same message.

// nn.param: "parameter name must not be empty"
func.func @param_empty_name() {
  %w = nn.param @"" : tensor<4xf32>
  func.return
}
// CHECK:      parameter name must not be empty
// CHECK:      %w = "nn.param"() {param_name = @""} : () -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: parameter name must not be empty

// -----
// nn.param: "trainable needs a non-empty group name"
func.func @param_empty_trainable_group() {
  %m = nn.param @attn.cosine_m {trainable = ""} : tensor<4xf32>
  func.return
}
// CHECK:      parameter 'attn.cosine_m': trainable needs a non-empty group name
// CHECK:      %m = "nn.param"() {param_name = @attn.cosine_m, trainable = ""} : () -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: parameter 'attn.cosine_m': trainable needs a non-empty group name

// -----
// nn.arange: "arange step must be non-zero"
func.func @arange_zero_step() {
  %r = nn.arange {start = 0.0 : f64, end = 9.0 : f64, step = 0.0 : f64} : tensor<9xi64>
  func.return
}
// CHECK:      arange step must be non-zero
// CHECK:      %r = "nn.arange"() {start = 0.000000e+00 : f64, end = 9.000000e+00 : f64, step = 0.000000e+00 : f64} : () -> tensor<9xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: arange step must be non-zero

// -----
// nn.arange: "arange from ... has N elements, result is ..."
func.func @arange_wrong_count() {
  %r = nn.arange {start = 0.0 : f64, end = 9.0 : f64, step = 2.0 : f64} : tensor<4xi64>
  func.return
}
// CHECK:      arange from 0.0 to 9.0 by 2.0 has 5 elements, result is 4
// CHECK:      %r = "nn.arange"() {start = 0.000000e+00 : f64, end = 9.000000e+00 : f64, step = 2.000000e+00 : f64} : () -> tensor<4xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: arange from 0.0 to 9.0 by 2.0 has 5 elements, result is 4

// -----
// UnaryOp (nn.neg): "result type ... must equal the operand type ..."
func.func @unary_result_type(%x: tensor<4xf32>) {
  %y = nn.neg %x : (tensor<4xf32>) -> tensor<5xf32>
  func.return
}
// CHECK:      result type tensor<5xf32> must equal the operand type tensor<4xf32>
// CHECK:      %y = "nn.neg"(%x) : (tensor<4xf32>) -> tensor<5xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result type tensor<5xf32> must equal the operand type tensor<4xf32>

// -----
// UnaryOp (nn.exp): the same check on the element type
func.func @unary_result_element_type(%x: tensor<4xf32>) {
  %y = nn.exp %x : (tensor<4xf32>) -> tensor<4xf16>
  func.return
}
// CHECK:      result type tensor<4xf16> must equal the operand type tensor<4xf32>
// CHECK:      %y = "nn.exp"(%x) : (tensor<4xf32>) -> tensor<4xf16>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result type tensor<4xf16> must equal the operand type tensor<4xf32>

// -----
// nn.logical_not: "logical_not expects a boolean (i1) tensor, got ..."
func.func @logical_not_float(%x: tensor<4xf32>) {
  %y = nn.logical_not %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      logical_not expects a boolean (i1) tensor, got f32
// CHECK:      %y = "nn.logical_not"(%x) : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: logical_not expects a boolean (i1) tensor, got f32

// -----
// nn.gelu: "gelu approximate must be "none" or "tanh", got ..."
func.func @gelu_bad_approximate(%x: tensor<4xf32>) {
  %y = nn.gelu %x {approximate = "fast"} : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      gelu approximate must be "none" or "tanh", got "fast"
// CHECK:      %y = "nn.gelu"(%x) {approximate = "fast"} : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: gelu approximate must be "none" or "tanh", got "fast"

// -----
// nn.dropout: "dropout probability must be in [0, 1), got ..."
func.func @dropout_p_one(%x: tensor<4xf32>) {
  %y = nn.dropout %x {p = 1.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      dropout probability must be in [0, 1), got 1.0
// CHECK:      %y = "nn.dropout"(%x) {p = 1.000000e+00 : f64} : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: dropout probability must be in [0, 1), got 1.0

// -----
// nn.clamp: "clamp needs at least one of min and max"
func.func @clamp_no_bounds(%x: tensor<4xf32>) {
  %y = nn.clamp %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      clamp needs at least one of min and max
// CHECK:      %y = "nn.clamp"(%x) : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clamp needs at least one of min and max

// -----
// nn.clamp: "clamp min ... exceeds max ..."
func.func @clamp_min_above_max(%x: tensor<4xf32>) {
  %y = nn.clamp %x {min = 2.0 : f64, max = 1.0 : f64} : (tensor<4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      clamp min 2.0 exceeds max 1.0
// CHECK:      %y = "nn.clamp"(%x) {min = 2.000000e+00 : f64, max = 1.000000e+00 : f64} : (tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: clamp min 2.0 exceeds max 1.0

// -----
// nn.cast: "cast changes only the element type; shape ... became ..."
func.func @cast_changes_shape(%x: tensor<2x9xi64>) {
  %y = nn.cast %x : (tensor<2x9xi64>) -> tensor<18xf32>
  func.return
}
// CHECK:      cast changes only the element type; shape 2x9 became 18
// CHECK:      %y = "nn.cast"(%x) : (tensor<2x9xi64>) -> tensor<18xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: cast changes only the element type; shape 2x9 became 18

// -----
// BinaryOp (nn.add): "operand shapes ... and ... do not broadcast"
func.func @binary_no_broadcast(%a: tensor<2x4xf32>, %b: tensor<3xf32>) {
  %z = nn.add %a, %b : (tensor<2x4xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK:      operand shapes 2x4 and 3 do not broadcast
// CHECK:      %z = "nn.add"(%a, %b) : (tensor<2x4xf32>, tensor<3xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: operand shapes 2x4 and 3 do not broadcast

// -----
// BinaryOp (nn.mul): expect_result_shape, "(the broadcast of the operands)"
func.func @binary_result_shape(%a: tensor<2x4xf32>, %s: tensor<f32>) {
  %z = nn.mul %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<4xf32>
  func.return
}
// CHECK:      result shape 4 does not match the expected 2x4 (the broadcast of the operands)
// CHECK:      %z = "nn.mul"(%a, %s) : (tensor<2x4xf32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 4 does not match the expected 2x4 (the broadcast of the operands)

// -----
// CompareOp (nn.eq): "a comparison produces i1, not ..."
func.func @compare_not_i1(%n: tensor<4xi64>, %k: tensor<i64>) {
  %z = nn.eq %n, %k : (tensor<4xi64>, tensor<i64>) -> tensor<4xi64>
  func.return
}
// CHECK:      a comparison produces i1, not i64
// CHECK:      %z = "nn.eq"(%n, %k) : (tensor<4xi64>, tensor<i64>) -> tensor<4xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: a comparison produces i1, not i64

// -----
// nn.logical_and: the same check
func.func @logical_and_not_i1(%p: tensor<4xi1>, %q: tensor<4xi1>) {
  %z = nn.logical_and %p, %q : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xf32>
  func.return
}
// CHECK:      a comparison produces i1, not f32
// CHECK:      %z = "nn.logical_and"(%p, %q) : (tensor<4xi1>, tensor<4xi1>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: a comparison produces i1, not f32

// -----
// BinaryOp (nn.sub): "result element type ... is inconsistent with the operands"
func.func @binary_bool_result_from_floats(%a: tensor<4xf32>, %b: tensor<4xf32>) {
  %z = nn.sub %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
  func.return
}
// CHECK:      result element type i1 is inconsistent with the operands
// CHECK:      %z = "nn.sub"(%a, %b) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xi1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result element type i1 is inconsistent with the operands

// -----
// nn.where: "where condition must be i1, got ..."
func.func @where_float_condition(%c: tensor<4xf32>, %s: tensor<f32>) {
  %z = nn.where %c, %s, %s : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
  func.return
}
// CHECK:      where condition must be i1, got f32
// CHECK:      %z = "nn.where"(%c, %s, %s) : (tensor<4xf32>, tensor<f32>, tensor<f32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: where condition must be i1, got f32

// -----
// nn.where: "condition and operand shapes do not broadcast" (condition vs lhs)
func.func @where_no_broadcast_lhs(%c: tensor<2x3xi1>, %x: tensor<4xf32>, %s: tensor<f32>) {
  %z = nn.where %c, %x, %s : (tensor<2x3xi1>, tensor<4xf32>, tensor<f32>) -> tensor<2x3xf32>
  func.return
}
// CHECK:      condition and operand shapes do not broadcast
// CHECK:      %z = "nn.where"(%c, %x, %s) : (tensor<2x3xi1>, tensor<4xf32>, tensor<f32>) -> tensor<2x3xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: condition and operand shapes do not broadcast

// -----
// nn.where: the same message when only rhs does not broadcast
func.func @where_no_broadcast_rhs(%c: tensor<3xi1>, %x: tensor<3xf32>, %y: tensor<4xf32>) {
  %z = nn.where %c, %x, %y : (tensor<3xi1>, tensor<3xf32>, tensor<4xf32>) -> tensor<3xf32>
  func.return
}
// CHECK:      condition and operand shapes do not broadcast
// CHECK:      %z = "nn.where"(%c, %x, %y) : (tensor<3xi1>, tensor<3xf32>, tensor<4xf32>) -> tensor<3xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: condition and operand shapes do not broadcast

// -----
// nn.where: expect_result_shape with a scalar condition and lhs (rhs decides the shape)
func.func @where_result_shape(%c: tensor<i1>, %s: tensor<f32>, %y: tensor<4xf32>) {
  %z = nn.where %c, %s, %y : (tensor<i1>, tensor<f32>, tensor<4xf32>) -> tensor<f32>
  func.return
}
// CHECK:      result shape scalar does not match the expected 4 (the broadcast of the operands)
// CHECK:      %z = "nn.where"(%c, %s, %y) : (tensor<i1>, tensor<f32>, tensor<4xf32>) -> tensor<f32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape scalar does not match the expected 4 (the broadcast of the operands)

// -----
// matmul_shape: "matmul operands must have rank >= 2, got ... and ..."
func.func @matmul_rank_one(%a: tensor<4xf32>, %b: tensor<4x4xf32>) {
  %z = nn.matmul %a, %b : (tensor<4xf32>, tensor<4x4xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      matmul operands must have rank >= 2, got 4 and 4x4
// CHECK:      %z = "nn.matmul"(%a, %b) : (tensor<4xf32>, tensor<4x4xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: matmul operands must have rank >= 2, got 4 and 4x4

// -----
// matmul_shape: "matmul contraction mismatch: ... has inner size ..., ... has ..."
func.func @matmul_contraction(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  %z = nn.matmul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  func.return
}
// CHECK:      matmul contraction mismatch: 2x3 has inner size 3, 4x5 has 4
// CHECK:      %z = "nn.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: matmul contraction mismatch: 2x3 has inner size 3, 4x5 has 4

// -----
// matmul_shape: "matmul batch dimensions of ... and ... do not broadcast"
func.func @matmul_batch(%a: tensor<2x3x4xf32>, %b: tensor<3x4x5xf32>) {
  %z = nn.matmul %a, %b : (tensor<2x3x4xf32>, tensor<3x4x5xf32>) -> tensor<2x3x5xf32>
  func.return
}
// CHECK:      matmul batch dimensions of 2x3x4 and 3x4x5 do not broadcast
// CHECK:      %z = "nn.matmul"(%a, %b) : (tensor<2x3x4xf32>, tensor<3x4x5xf32>) -> tensor<2x3x5xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: matmul batch dimensions of 2x3x4 and 3x4x5 do not broadcast

// -----
// nn.matmul: expect_result_shape
func.func @matmul_result_shape(%a: tensor<2x12x9x32xf32>, %b: tensor<2x12x32x9xf32>) {
  %z = nn.matmul %a, %b : (tensor<2x12x9x32xf32>, tensor<2x12x32x9xf32>) -> tensor<2x12x9x32xf32>
  func.return
}
// CHECK:      result shape 2x12x9x32 does not match the expected 2x12x9x9
// CHECK:      %z = "nn.matmul"(%a, %b) : (tensor<2x12x9x32xf32>, tensor<2x12x32x9xf32>) -> tensor<2x12x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x12x9x32 does not match the expected 2x12x9x9

// -----
// expect_same_element_type (nn.matmul): "element type ... of an operand does not match the result's ..."
func.func @matmul_element_type(%a: tensor<2x3xf32>, %b: tensor<3x5xf16>) {
  %z = nn.matmul %a, %b : (tensor<2x3xf32>, tensor<3x5xf16>) -> tensor<2x5xf32>
  func.return
}
// CHECK:      element type f16 of an operand does not match the result's f32
// CHECK:      %z = "nn.matmul"(%a, %b) : (tensor<2x3xf32>, tensor<3x5xf16>) -> tensor<2x5xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type f16 of an operand does not match the result's f32

// -----
// nn.linear: "linear weight must be 2-d (out x in), got ..."
func.func @linear_weight_rank(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  %y = nn.linear %x, %w : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2xf32>
  func.return
}
// CHECK:      linear weight must be 2-d (out x in), got 8
// CHECK:      %y = "nn.linear"(%x, %w) : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: linear weight must be 2-d (out x in), got 8

// -----
// nn.linear: "linear input feature size ... does not match weight ..."
func.func @linear_feature_size(%x: tensor<2x8xf32>, %w: tensor<4x16xf32>) {
  %y = nn.linear %x, %w : (tensor<2x8xf32>, tensor<4x16xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK:      linear input feature size 8 does not match weight 4x16
// CHECK:      %y = "nn.linear"(%x, %w) : (tensor<2x8xf32>, tensor<4x16xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: linear input feature size 8 does not match weight 4x16

// -----
// nn.linear: "linear bias must have shape ..., got ..."
func.func @linear_bias_shape(%x: tensor<2x8xf32>, %w: tensor<4x8xf32>, %b: tensor<5xf32>) {
  %y = nn.linear %x, %w, %b : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<5xf32>) -> tensor<2x4xf32>
  func.return
}
// CHECK:      linear bias must have shape 4, got 5
// CHECK:      %y = "nn.linear"(%x, %w, %b) : (tensor<2x8xf32>, tensor<4x8xf32>, tensor<5xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: linear bias must have shape 4, got 5

// -----
// nn.linear: expect_result_shape
func.func @linear_result_shape(%x: tensor<2x9x8xf32>, %w: tensor<4x8xf32>) {
  %y = nn.linear %x, %w : (tensor<2x9x8xf32>, tensor<4x8xf32>) -> tensor<2x9x8xf32>
  func.return
}
// CHECK:      result shape 2x9x8 does not match the expected 2x9x4
// CHECK:      %y = "nn.linear"(%x, %w) : (tensor<2x9x8xf32>, tensor<4x8xf32>) -> tensor<2x9x8xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x9x8 does not match the expected 2x9x4

// -----
// nn.linear: expect_same_element_type
func.func @linear_element_type(%x: tensor<2x8xf32>, %w: tensor<4x8xbf16>) {
  %y = nn.linear %x, %w : (tensor<2x8xf32>, tensor<4x8xbf16>) -> tensor<2x4xf32>
  func.return
}
// CHECK:      element type bf16 of an operand does not match the result's f32
// CHECK:      %y = "nn.linear"(%x, %w) : (tensor<2x8xf32>, tensor<4x8xbf16>) -> tensor<2x4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type bf16 of an operand does not match the result's f32

// -----
// nn.embedding: "embedding indices must be integers, got ..."
func.func @embedding_float_indices(%w: tensor<100x16xf32>, %ids: tensor<2x9xf32>) {
  %e = nn.embedding %w, %ids : (tensor<100x16xf32>, tensor<2x9xf32>) -> tensor<2x9x16xf32>
  func.return
}
// CHECK:      embedding indices must be integers, got f32
// CHECK:      %e = "nn.embedding"(%w, %ids) : (tensor<100x16xf32>, tensor<2x9xf32>) -> tensor<2x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: embedding indices must be integers, got f32

// -----
// nn.embedding: "embedding table must be 2-d, got ..."
func.func @embedding_table_rank(%w: tensor<100x16x2xf32>, %ids: tensor<2x9xi64>) {
  %e = nn.embedding %w, %ids : (tensor<100x16x2xf32>, tensor<2x9xi64>) -> tensor<2x9x16xf32>
  func.return
}
// CHECK:      embedding table must be 2-d, got 100x16x2
// CHECK:      %e = "nn.embedding"(%w, %ids) : (tensor<100x16x2xf32>, tensor<2x9xi64>) -> tensor<2x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: embedding table must be 2-d, got 100x16x2

// -----
// nn.embedding: expect_result_shape
func.func @embedding_result_shape(%w: tensor<100x16xf32>, %ids: tensor<2x9xi64>) {
  %e = nn.embedding %w, %ids : (tensor<100x16xf32>, tensor<2x9xi64>) -> tensor<2x9x100xf32>
  func.return
}
// CHECK:      result shape 2x9x100 does not match the expected 2x9x16
// CHECK:      %e = "nn.embedding"(%w, %ids) : (tensor<100x16xf32>, tensor<2x9xi64>) -> tensor<2x9x100xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x9x100 does not match the expected 2x9x16

// -----
// normalize_dim (nn.softmax): "softmax dim ... is out of range for a rank-... tensor"
func.func @softmax_dim_range(%x: tensor<2x9xf32>) {
  %y = nn.softmax %x {dim = 2 : i64} : (tensor<2x9xf32>) -> tensor<2x9xf32>
  func.return
}
// CHECK:      softmax dim 2 is out of range for a rank-2 tensor
// CHECK:      %y = "nn.softmax"(%x) {dim = 2 : i64} : (tensor<2x9xf32>) -> tensor<2x9xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: softmax dim 2 is out of range for a rank-2 tensor

// -----
// nn.softmax: expect_result_shape
func.func @softmax_result_shape(%x: tensor<2x9xf32>) {
  %y = nn.softmax %x {dim = -1 : i64} : (tensor<2x9xf32>) -> tensor<9x2xf32>
  func.return
}
// CHECK:      result shape 9x2 does not match the expected 2x9
// CHECK:      %y = "nn.softmax"(%x) {dim = -1 : i64} : (tensor<2x9xf32>) -> tensor<9x2xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 9x2 does not match the expected 2x9

// -----
// nn.layer_norm: "normalized_shape ... is not a suffix of the input shape ..."
func.func @layer_norm_not_suffix(%x: tensor<2x9x384xf32>) {
  %y = nn.layer_norm %x {normalized_shape = array<i64: 9>, eps = 1.0e-05 : f64} : (tensor<2x9x384xf32>) -> tensor<2x9x384xf32>
  func.return
}
// CHECK:      normalized_shape 9 is not a suffix of the input shape 2x9x384
// CHECK:      %y = "nn.layer_norm"(%x) {normalized_shape = array<i64: 9>, eps = 1.000000e-05 : f64} : (tensor<2x9x384xf32>) -> tensor<2x9x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: normalized_shape 9 is not a suffix of the input shape 2x9x384

// -----
// nn.layer_norm: "layer_norm takes a weight and a bias or neither, got ... affine operands"
func.func @layer_norm_one_affine(%x: tensor<2x9x384xf32>, %g: tensor<384xf32>) {
  %y = nn.layer_norm %x affine %g {normalized_shape = array<i64: 384>, eps = 1.0e-05 : f64} : (tensor<2x9x384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
  func.return
}
// CHECK:      layer_norm takes a weight and a bias or neither, got 1 affine operands
// CHECK:      %y = "nn.layer_norm"(%x, %g) {normalized_shape = array<i64: 384>, eps = 1.000000e-05 : f64} : (tensor<2x9x384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: layer_norm takes a weight and a bias or neither, got 1 affine operands

// -----
// nn.layer_norm: "layer_norm weight shape ... must equal normalized_shape ..."
func.func @layer_norm_weight_shape(%x: tensor<2x9x384xf32>, %g: tensor<9x384xf32>, %b: tensor<384xf32>) {
  %y = nn.layer_norm %x affine %g, %b {normalized_shape = array<i64: 384>, eps = 1.0e-05 : f64} : (tensor<2x9x384xf32>, tensor<9x384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
  func.return
}
// CHECK:      layer_norm weight shape 9x384 must equal normalized_shape 384
// CHECK:      %y = "nn.layer_norm"(%x, %g, %b) {normalized_shape = array<i64: 384>, eps = 1.000000e-05 : f64} : (tensor<2x9x384xf32>, tensor<9x384xf32>, tensor<384xf32>) -> tensor<2x9x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: layer_norm weight shape 9x384 must equal normalized_shape 384

// -----
// nn.layer_norm: "layer_norm bias shape ... must equal normalized_shape ..."
func.func @layer_norm_bias_shape(%x: tensor<2x9x384xf32>, %g: tensor<384xf32>, %b: tensor<383xf32>) {
  %y = nn.layer_norm %x affine %g, %b {normalized_shape = array<i64: 384>, eps = 1.0e-05 : f64} : (tensor<2x9x384xf32>, tensor<384xf32>, tensor<383xf32>) -> tensor<2x9x384xf32>
  func.return
}
// CHECK:      layer_norm bias shape 383 must equal normalized_shape 384
// CHECK:      %y = "nn.layer_norm"(%x, %g, %b) {normalized_shape = array<i64: 384>, eps = 1.000000e-05 : f64} : (tensor<2x9x384xf32>, tensor<384xf32>, tensor<383xf32>) -> tensor<2x9x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: layer_norm bias shape 383 must equal normalized_shape 384

// -----
// nn.layer_norm: "layer_norm eps must be positive, got ..."
func.func @layer_norm_eps(%x: tensor<2x9x384xf32>) {
  %y = nn.layer_norm %x {normalized_shape = array<i64: 384>, eps = 0.0 : f64} : (tensor<2x9x384xf32>) -> tensor<2x9x384xf32>
  func.return
}
// CHECK:      layer_norm eps must be positive, got 0.0
// CHECK:      %y = "nn.layer_norm"(%x) {normalized_shape = array<i64: 384>, eps = 0.000000e+00 : f64} : (tensor<2x9x384xf32>) -> tensor<2x9x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: layer_norm eps must be positive, got 0.0

// -----
// nn.layer_norm: expect_result_shape
func.func @layer_norm_result_shape(%x: tensor<2x9x384xf32>) {
  %y = nn.layer_norm %x {normalized_shape = array<i64: 384>, eps = 1.0e-05 : f64} : (tensor<2x9x384xf32>) -> tensor<18x384xf32>
  func.return
}
// CHECK:      result shape 18x384 does not match the expected 2x9x384
// CHECK:      %y = "nn.layer_norm"(%x) {normalized_shape = array<i64: 384>, eps = 1.000000e-05 : f64} : (tensor<2x9x384xf32>) -> tensor<18x384xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 18x384 does not match the expected 2x9x384

// -----
// nn.sdpa: "dropout_p must be in [0, 1), got ..."
func.func @sdpa_dropout(%q: tensor<2x4x9x16xf32>) {
  %o = nn.sdpa %q, %q, %q {causal = false, dropout_p = 1.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      dropout_p must be in [0, 1), got 1.0
// CHECK:      %o = "nn.sdpa"(%q, %q, %q) {causal = false, dropout_p = 1.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: dropout_p must be in [0, 1), got 1.0

// -----
// verify_attention_operands (nn.sdpa): "query, key and value must have rank >= 2, got ..."
func.func @sdpa_rank(%q: tensor<16xf32>, %k: tensor<9x16xf32>) {
  %o = nn.sdpa %q, %k, %k {causal = false, dropout_p = 0.0 : f64} : (tensor<16xf32>, tensor<9x16xf32>, tensor<9x16xf32>) -> tensor<16xf32>
  func.return
}
// CHECK:      query, key and value must have rank >= 2, got 16, 9x16, 9x16
// CHECK:      %o = "nn.sdpa"(%q, %k, %k) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<16xf32>, tensor<9x16xf32>, tensor<9x16xf32>) -> tensor<16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: query, key and value must have rank >= 2, got 16, 9x16, 9x16

// -----
// verify_attention_operands (nn.sdpa): "query head size ... does not match key head size ..."
func.func @sdpa_head_size(%q: tensor<2x4x9x16xf32>, %k: tensor<2x4x9x32xf32>) {
  %o = nn.sdpa %q, %k, %k {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
  func.return
}
// CHECK:      query head size 16 does not match key head size 32
// CHECK:      %o = "nn.sdpa"(%q, %k, %k) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x32xf32>, tensor<2x4x9x32xf32>) -> tensor<2x4x9x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: query head size 16 does not match key head size 32

// -----
// verify_attention_operands (nn.sdpa): "key length ... does not match value length ..."
func.func @sdpa_key_value_length(%q: tensor<2x4x9x16xf32>, %v: tensor<2x4x7x16xf32>) {
  %o = nn.sdpa %q, %q, %v {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      key length 9 does not match value length 7
// CHECK:      %o = "nn.sdpa"(%q, %q, %v) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x7x16xf32>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: key length 9 does not match value length 7

// -----
// verify_attention_operands (nn.sdpa): "batch dims of query ..., key ..., value ... do not broadcast"
func.func @sdpa_batch(%q: tensor<2x4x9x16xf32>, %k: tensor<3x4x9x16xf32>) {
  %o = nn.sdpa %q, %k, %k {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<3x4x9x16xf32>, tensor<3x4x9x16xf32>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      batch dims of query 2x4x9x16, key 3x4x9x16, value 3x4x9x16 do not broadcast
// CHECK:      %o = "nn.sdpa"(%q, %k, %k) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<3x4x9x16xf32>, tensor<3x4x9x16xf32>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: batch dims of query 2x4x9x16, key 3x4x9x16, value 3x4x9x16 do not broadcast

// -----
// verify_attention_operands (nn.sdpa): "mask shape ... does not broadcast to the scores ..."
func.func @sdpa_mask_shape(%q: tensor<2x4x9x16xf32>, %m: tensor<2x1x9x8xi1>) {
  %o = nn.sdpa %q, %q, %q mask %m {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x1x9x8xi1>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      mask shape 2x1x9x8 does not broadcast to the scores 2x4x9x9
// CHECK:      %o = "nn.sdpa"(%q, %q, %q, %m) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x1x9x8xi1>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask shape 2x1x9x8 does not broadcast to the scores 2x4x9x9

// -----
// verify_attention_operands (nn.sdpa): "mask must be i1 (keep) or ... (additive), got ..."
func.func @sdpa_mask_type(%q: tensor<2x4x9x16xf32>, %m: tensor<2x1x1x9xi64>) {
  %o = nn.sdpa %q, %q, %q mask %m {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x1x1x9xi64>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      mask must be i1 (keep) or f32 (additive), got i64
// CHECK:      %o = "nn.sdpa"(%q, %q, %q, %m) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x1x1x9xi64>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: mask must be i1 (keep) or f32 (additive), got i64

// -----
// verify_attention_operands (nn.sdpa): expect_result_shape "(batch x query length x value size)"
func.func @sdpa_result_shape(%q: tensor<2x4x9x16xf32>, %v: tensor<2x4x9x8xf32>) {
  %o = nn.sdpa %q, %q, %v {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x8xf32>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      result shape 2x4x9x16 does not match the expected 2x4x9x8 (batch x query length x value size)
// CHECK:      %o = "nn.sdpa"(%q, %q, %v) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x8xf32>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x4x9x16 does not match the expected 2x4x9x8 (batch x query length x value size)

// -----
// verify_attention_operands (nn.sdpa): expect_same_element_type
func.func @sdpa_element_type(%q: tensor<2x4x9x16xf32>, %v: tensor<2x4x9x16xf16>) {
  %o = nn.sdpa %q, %q, %v {causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf16>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      element type f16 of an operand does not match the result's f32
// CHECK:      %o = "nn.sdpa"(%q, %q, %v) {causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf16>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type f16 of an operand does not match the result's f32

// -----
// verify_attention_operands (nn.sdpa): "scale must be positive, got ..."
func.func @sdpa_scale(%q: tensor<2x4x9x16xf32>) {
  %o = nn.sdpa %q, %q, %q {scale = -0.25 : f64, causal = false, dropout_p = 0.0 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>) -> tensor<2x4x9x16xf32>
  func.return
}
// CHECK:      scale must be positive, got -0.25
// CHECK:      %o = "nn.sdpa"(%q, %q, %q) {scale = -2.500000e-01 : f64, causal = false, dropout_p = 0.000000e+00 : f64} : (tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>, tensor<2x4x9x16xf32>) -> tensor<2x4x9x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: scale must be positive, got -0.25

// -----
// nn.reshape: "reshape from ... to ... changes the element count"
func.func @reshape_count(%x: tensor<2x9x384xf32>) {
  %y = nn.reshape %x : (tensor<2x9x384xf32>) -> tensor<2x9x12x16xf32>
  func.return
}
// CHECK:      reshape from 2x9x384 to 2x9x12x16 changes the element count
// CHECK:      %y = "nn.reshape"(%x) : (tensor<2x9x384xf32>) -> tensor<2x9x12x16xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: reshape from 2x9x384 to 2x9x12x16 changes the element count

// -----
// nn.reshape: expect_same_element_type
func.func @reshape_element_type(%x: tensor<2x6xf32>) {
  %y = nn.reshape %x : (tensor<2x6xf32>) -> tensor<12xi64>
  func.return
}
// CHECK:      element type f32 of an operand does not match the result's i64
// CHECK:      %y = "nn.reshape"(%x) : (tensor<2x6xf32>) -> tensor<12xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type f32 of an operand does not match the result's i64

// -----
// normalize_dim (nn.transpose): "transpose dim0 ... is out of range ..."
func.func @transpose_dim0_range(%x: tensor<2x3xf32>) {
  %y = nn.transpose %x {dim0 = 2 : i64, dim1 = 0 : i64} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return
}
// CHECK:      transpose dim0 2 is out of range for a rank-2 tensor
// CHECK:      %y = "nn.transpose"(%x) {dim0 = 2 : i64, dim1 = 0 : i64} : (tensor<2x3xf32>) -> tensor<3x2xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: transpose dim0 2 is out of range for a rank-2 tensor

// -----
// normalize_dim (nn.transpose): "transpose dim1 ... is out of range ..."
func.func @transpose_dim1_range(%x: tensor<2x3xf32>) {
  %y = nn.transpose %x {dim0 = 0 : i64, dim1 = -3 : i64} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return
}
// CHECK:      transpose dim1 -3 is out of range for a rank-2 tensor
// CHECK:      %y = "nn.transpose"(%x) {dim0 = 0 : i64, dim1 = -3 : i64} : (tensor<2x3xf32>) -> tensor<3x2xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: transpose dim1 -3 is out of range for a rank-2 tensor

// -----
// nn.transpose: expect_result_shape
func.func @transpose_result_shape(%x: tensor<2x12x9x32xf32>) {
  %y = nn.transpose %x {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x9x12x32xf32>
  func.return
}
// CHECK:      result shape 2x9x12x32 does not match the expected 2x12x32x9
// CHECK:      %y = "nn.transpose"(%x) {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<2x12x9x32xf32>) -> tensor<2x9x12x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x9x12x32 does not match the expected 2x12x32x9

// -----
// nn.transpose: expect_same_element_type
func.func @transpose_element_type(%x: tensor<2x3xf32>) {
  %y = nn.transpose %x {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<2x3xf32>) -> tensor<3x2xf16>
  func.return
}
// CHECK:      element type f32 of an operand does not match the result's f16
// CHECK:      %y = "nn.transpose"(%x) {dim0 = 0 : i64, dim1 = 1 : i64} : (tensor<2x3xf32>) -> tensor<3x2xf16>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type f32 of an operand does not match the result's f16

// -----
// normalize_dim (nn.permute): "permute dim ... is out of range ..."
func.func @permute_dim_range(%x: tensor<2x3x4xf32>) {
  %y = nn.permute %x {dims = array<i64: 0, 3, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
  func.return
}
// CHECK:      permute dim 3 is out of range for a rank-3 tensor
// CHECK:      %y = "nn.permute"(%x) {dims = array<i64: 0, 3, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: permute dim 3 is out of range for a rank-3 tensor

// -----
// nn.permute: "dims ... are not a permutation of 0..N"
func.func @permute_not_permutation(%x: tensor<2x3x4xf32>) {
  %y = nn.permute %x {dims = array<i64: 0, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x3x3xf32>
  func.return
}
// CHECK:      dims [0, 1, -2] are not a permutation of 0..2
// CHECK:      %y = "nn.permute"(%x) {dims = array<i64: 0, 1, -2>} : (tensor<2x3x4xf32>) -> tensor<2x3x3xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: dims [0, 1, -2] are not a permutation of 0..2

// -----
// nn.permute: expect_result_shape
func.func @permute_result_shape(%x: tensor<2x9x12x32xf32>) {
  %y = nn.permute %x {dims = array<i64: 0, 2, 1, 3>} : (tensor<2x9x12x32xf32>) -> tensor<2x9x12x32xf32>
  func.return
}
// CHECK:      result shape 2x9x12x32 does not match the expected 2x12x9x32
// CHECK:      %y = "nn.permute"(%x) {dims = array<i64: 0, 2, 1, 3>} : (tensor<2x9x12x32xf32>) -> tensor<2x9x12x32xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x9x12x32 does not match the expected 2x12x9x32

// -----
// nn.broadcast_to: "shape ... does not broadcast to ..."
func.func @broadcast_to_bad(%x: tensor<3xi64>) {
  %y = nn.broadcast_to %x : (tensor<3xi64>) -> tensor<2x4xi64>
  func.return
}
// CHECK:      shape 3 does not broadcast to 2x4
// CHECK:      %y = "nn.broadcast_to"(%x) : (tensor<3xi64>) -> tensor<2x4xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: shape 3 does not broadcast to 2x4

// -----
// nn.broadcast_to: expect_same_element_type
func.func @broadcast_to_element_type(%x: tensor<1x9xi64>) {
  %y = nn.broadcast_to %x : (tensor<1x9xi64>) -> tensor<2x9xi32>
  func.return
}
// CHECK:      element type i64 of an operand does not match the result's i32
// CHECK:      %y = "nn.broadcast_to"(%x) : (tensor<1x9xi64>) -> tensor<2x9xi32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type i64 of an operand does not match the result's i32

// -----
// normalize_dim (nn.slice) on a rank-0 tensor: "slice dim 0 is out of range for a rank-0 tensor"
func.func @slice_scalar(%x: tensor<i64>) {
  %y = nn.slice %x {dim = 0 : i64, start = 0 : i64, end = 0 : i64, step = 1 : i64} : (tensor<i64>) -> tensor<i64>
  func.return
}
// CHECK:      slice dim 0 is out of range for a rank-0 tensor
// CHECK:      %y = "nn.slice"(%x) {dim = 0 : i64, start = 0 : i64, end = 0 : i64, step = 1 : i64} : (tensor<i64>) -> tensor<i64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: slice dim 0 is out of range for a rank-0 tensor

// -----
// nn.slice: "slice step must be >= 1, got ..."
func.func @slice_step(%x: tensor<1x512xi64>) {
  %y = nn.slice %x {dim = 1 : i64, start = 0 : i64, end = 9 : i64, step = 0 : i64} : (tensor<1x512xi64>) -> tensor<1x9xi64>
  func.return
}
// CHECK:      slice step must be >= 1, got 0
// CHECK:      %y = "nn.slice"(%x) {dim = 1 : i64, start = 0 : i64, end = 9 : i64, step = 0 : i64} : (tensor<1x512xi64>) -> tensor<1x9xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: slice step must be >= 1, got 0

// -----
// nn.slice: "slice [start:end] is out of bounds for dimension ... of size ..."
func.func @slice_bounds(%x: tensor<1x512xi64>) {
  %y = nn.slice %x {dim = 1 : i64, start = 0 : i64, end = 600 : i64, step = 1 : i64} : (tensor<1x512xi64>) -> tensor<1x600xi64>
  func.return
}
// CHECK:      slice [0:600] is out of bounds for dimension 1 of size 512
// CHECK:      %y = "nn.slice"(%x) {dim = 1 : i64, start = 0 : i64, end = 600 : i64, step = 1 : i64} : (tensor<1x512xi64>) -> tensor<1x600xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: slice [0:600] is out of bounds for dimension 1 of size 512

// -----
// nn.slice: expect_result_shape
func.func @slice_result_shape(%x: tensor<1x512xi64>) {
  %y = nn.slice %x {dim = 1 : i64, start = 1 : i64, end = 10 : i64, step = 4 : i64} : (tensor<1x512xi64>) -> tensor<1x2xi64>
  func.return
}
// CHECK:      result shape 1x2 does not match the expected 1x3
// CHECK:      %y = "nn.slice"(%x) {dim = 1 : i64, start = 1 : i64, end = 10 : i64, step = 4 : i64} : (tensor<1x512xi64>) -> tensor<1x2xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 1x2 does not match the expected 1x3

// -----
// normalize_dim (nn.select) on a rank-0 tensor: "select dim 0 is out of range for a rank-0 tensor"
func.func @select_scalar(%x: tensor<f32>) {
  %y = nn.select %x {dim = 0 : i64, index = 0 : i64} : (tensor<f32>) -> tensor<f32>
  func.return
}
// CHECK:      select dim 0 is out of range for a rank-0 tensor
// CHECK:      %y = "nn.select"(%x) {dim = 0 : i64, index = 0 : i64} : (tensor<f32>) -> tensor<f32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: select dim 0 is out of range for a rank-0 tensor

// -----
// nn.select: "select index ... is out of bounds for size ..."
func.func @select_index(%x: tensor<3x17x64xf32>) {
  %y = nn.select %x {dim = 1 : i64, index = 17 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>
  func.return
}
// CHECK:      select index 17 is out of bounds for size 17
// CHECK:      %y = "nn.select"(%x) {dim = 1 : i64, index = 17 : i64} : (tensor<3x17x64xf32>) -> tensor<3x64xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: select index 17 is out of bounds for size 17

// -----
// nn.select: expect_result_shape
func.func @select_result_shape(%x: tensor<3x17x64xf32>) {
  %y = nn.select %x {dim = 1 : i64, index = 0 : i64} : (tensor<3x17x64xf32>) -> tensor<3x1x64xf32>
  func.return
}
// CHECK:      result shape 3x1x64 does not match the expected 3x64
// CHECK:      %y = "nn.select"(%x) {dim = 1 : i64, index = 0 : i64} : (tensor<3x17x64xf32>) -> tensor<3x1x64xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 3x1x64 does not match the expected 3x64

// -----
// nn.concat: "concat needs at least one input"
func.func @concat_empty() {
  %y = nn.concat {dim = 0 : i64} : () -> tensor<4xf32>
  func.return
}
// CHECK:      concat needs at least one input
// CHECK:      %y = "nn.concat"() {dim = 0 : i64} : () -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: concat needs at least one input

// -----
// normalize_dim (nn.concat) on rank-0 inputs: "concat dim 0 is out of range for a rank-0 tensor"
func.func @concat_scalars(%x: tensor<f32>) {
  %y = nn.concat %x, %x {dim = 0 : i64} : (tensor<f32>, tensor<f32>) -> tensor<2xf32>
  func.return
}
// CHECK:      concat dim 0 is out of range for a rank-0 tensor
// CHECK:      %y = "nn.concat"(%x, %x) {dim = 0 : i64} : (tensor<f32>, tensor<f32>) -> tensor<2xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: concat dim 0 is out of range for a rank-0 tensor

// -----
// nn.concat: "concat inputs differ outside dimension ...: ... vs ..."
func.func @concat_mismatch(%a: tensor<3x1x64xf32>, %b: tensor<3x16x32xf32>) {
  %y = nn.concat %a, %b {dim = 1 : i64} : (tensor<3x1x64xf32>, tensor<3x16x32xf32>) -> tensor<3x17x64xf32>
  func.return
}
// CHECK:      concat inputs differ outside dimension 1: 3x16x32 vs 3x1x64
// CHECK:      %y = "nn.concat"(%a, %b) {dim = 1 : i64} : (tensor<3x1x64xf32>, tensor<3x16x32xf32>) -> tensor<3x17x64xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: concat inputs differ outside dimension 1: 3x16x32 vs 3x1x64

// -----
// nn.concat: expect_result_shape
func.func @concat_result_shape(%a: tensor<3x1x64xf32>, %b: tensor<3x16x64xf32>) {
  %y = nn.concat %a, %b {dim = -2 : i64} : (tensor<3x1x64xf32>, tensor<3x16x64xf32>) -> tensor<3x16x64xf32>
  func.return
}
// CHECK:      result shape 3x16x64 does not match the expected 3x17x64
// CHECK:      %y = "nn.concat"(%a, %b) {dim = -2 : i64} : (tensor<3x1x64xf32>, tensor<3x16x64xf32>) -> tensor<3x16x64xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 3x16x64 does not match the expected 3x17x64

// -----
// normalize_dim (nn.gather): "gather dim ... is out of range ..."
func.func @gather_dim_range(%x: tensor<1x512xi64>, %i: tensor<1x9xi64>) {
  %y = nn.gather %x, %i {dim = -3 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x9xi64>
  func.return
}
// CHECK:      gather dim -3 is out of range for a rank-2 tensor
// CHECK:      %y = "nn.gather"(%x, %i) {dim = -3 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x9xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: gather dim -3 is out of range for a rank-2 tensor

// -----
// nn.gather: "gather indices must be integers, got ..."
func.func @gather_float_indices(%x: tensor<1x512xi64>, %i: tensor<1x9xf32>) {
  %y = nn.gather %x, %i {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xf32>) -> tensor<1x9xi64>
  func.return
}
// CHECK:      gather indices must be integers, got f32
// CHECK:      %y = "nn.gather"(%x, %i) {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xf32>) -> tensor<1x9xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: gather indices must be integers, got f32

// -----
// nn.gather: expect_result_shape "(the indices' shape)"
func.func @gather_result_shape(%x: tensor<1x512xi64>, %i: tensor<1x9xi64>) {
  %y = nn.gather %x, %i {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x512xi64>
  func.return
}
// CHECK:      result shape 1x512 does not match the expected 1x9 (the indices' shape)
// CHECK:      %y = "nn.gather"(%x, %i) {dim = 1 : i64} : (tensor<1x512xi64>, tensor<1x9xi64>) -> tensor<1x512xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 1x512 does not match the expected 1x9 (the indices' shape)

// -----
// nn.index: "... index tensors but dims lists ... dimensions"
func.func @index_count(%m: tensor<2x9xi1>, %b: tensor<2x1xi64>, %j: tensor<1x9xi64>) {
  %y = nn.index %m[%b, %j] {dims = array<i64: 0>} : (tensor<2x9xi1>, tensor<2x1xi64>, tensor<1x9xi64>) -> tensor<2x9xi1>
  func.return
}
// CHECK:      2 index tensors but dims lists 1 dimensions
// CHECK:      %y = "nn.index"(%m, %b, %j) {dims = array<i64: 0>} : (tensor<2x9xi1>, tensor<2x1xi64>, tensor<1x9xi64>) -> tensor<2x9xi1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: 2 index tensors but dims lists 1 dimensions

// -----
// nn.index: "dims ... must be increasing and within rank ..."
func.func @index_dims_order(%m: tensor<2x9xi1>, %b: tensor<2x1xi64>, %j: tensor<1x9xi64>) {
  %y = nn.index %m[%b, %j] {dims = array<i64: 1, 0>} : (tensor<2x9xi1>, tensor<2x1xi64>, tensor<1x9xi64>) -> tensor<2x9xi1>
  func.return
}
// CHECK:      dims [1, 0] must be increasing and within rank 2
// CHECK:      %y = "nn.index"(%m, %b, %j) {dims = array<i64: 1, 0>} : (tensor<2x9xi1>, tensor<2x1xi64>, tensor<1x9xi64>) -> tensor<2x9xi1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: dims [1, 0] must be increasing and within rank 2

// -----
// nn.index: "index tensors must be integers, got ..."
func.func @index_float_indices(%m: tensor<2x9xi1>, %b: tensor<2x1xf32>) {
  %y = nn.index %m[%b] {dims = array<i64: 0>} : (tensor<2x9xi1>, tensor<2x1xf32>) -> tensor<2x1x9xi1>
  func.return
}
// CHECK:      index tensors must be integers, got f32
// CHECK:      %y = "nn.index"(%m, %b) {dims = array<i64: 0>} : (tensor<2x9xi1>, tensor<2x1xf32>) -> tensor<2x1x9xi1>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: index tensors must be integers, got f32

// -----
// nn.index: expect_same_element_type
func.func @index_element_type(%m: tensor<2x9xi1>, %b: tensor<2x1xi64>) {
  %y = nn.index %m[%b] {dims = array<i64: 0>} : (tensor<2x9xi1>, tensor<2x1xi64>) -> tensor<2x1x9xf32>
  func.return
}
// CHECK:      element type i1 of an operand does not match the result's f32
// CHECK:      %y = "nn.index"(%m, %b) {dims = array<i64: 0>} : (tensor<2x9xi1>, tensor<2x1xi64>) -> tensor<2x1x9xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: element type i1 of an operand does not match the result's f32

// -----
// normalize_dim (nn.reduce_sum): "reduction dim ... is out of range ..."
func.func @reduce_dim_range(%x: tensor<2x9x384xf32>) {
  %y = nn.reduce_sum %x {dims = array<i64: 3>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<2x9xf32>
  func.return
}
// CHECK:      reduction dim 3 is out of range for a rank-3 tensor
// CHECK:      %y = "nn.reduce_sum"(%x) {dims = array<i64: 3>, keepdim = false} : (tensor<2x9x384xf32>) -> tensor<2x9xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: reduction dim 3 is out of range for a rank-3 tensor

// -----
// nn.reduce_mean: expect_result_shape (keepdim keeps the reduced dim as 1)
func.func @reduce_mean_result_shape(%x: tensor<2x9x64xf32>) {
  %y = nn.reduce_mean %x {dims = array<i64: -1>, keepdim = true} : (tensor<2x9x64xf32>) -> tensor<2x9xf32>
  func.return
}
// CHECK:      result shape 2x9 does not match the expected 2x9x1
// CHECK:      %y = "nn.reduce_mean"(%x) {dims = array<i64: -1>, keepdim = true} : (tensor<2x9x64xf32>) -> tensor<2x9xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x9 does not match the expected 2x9x1

// -----
// nn.vector_norm: expect_result_shape (empty dims reduce everything)
func.func @vector_norm_result_shape(%x: tensor<4x384xf32>) {
  %y = nn.vector_norm %x {ord = 2.0 : f64, dims = array<i64>, keepdim = false} : (tensor<4x384xf32>) -> tensor<4xf32>
  func.return
}
// CHECK:      result shape 4 does not match the expected scalar
// CHECK:      %y = "nn.vector_norm"(%x) {ord = 2.000000e+00 : f64, dims = array<i64>, keepdim = false} : (tensor<4x384xf32>) -> tensor<4xf32>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 4 does not match the expected scalar

// -----
// normalize_dim (nn.cumsum): "cumsum dim ... is out of range ..."
func.func @cumsum_dim_range(%x: tensor<2x9xi64>) {
  %y = nn.cumsum %x {dim = 2 : i64} : (tensor<2x9xi64>) -> tensor<2x9xi64>
  func.return
}
// CHECK:      cumsum dim 2 is out of range for a rank-2 tensor
// CHECK:      %y = "nn.cumsum"(%x) {dim = 2 : i64} : (tensor<2x9xi64>) -> tensor<2x9xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: cumsum dim 2 is out of range for a rank-2 tensor

// -----
// nn.cumsum: expect_result_shape
func.func @cumsum_result_shape(%x: tensor<2x9xi64>) {
  %y = nn.cumsum %x {dim = 1 : i64} : (tensor<2x9xi64>) -> tensor<2x8xi64>
  func.return
}
// CHECK:      result shape 2x8 does not match the expected 2x9
// CHECK:      %y = "nn.cumsum"(%x) {dim = 1 : i64} : (tensor<2x9xi64>) -> tensor<2x8xi64>
// CHECK-NEXT: ^^^
// CHECK-NEXT: | Operation does not verify: result shape 2x8 does not match the expected 2x9

// -----
// nn.log: floating-point only
func.func @log_of_integer(%n: tensor<4xi64>) {
  %y = nn.log %n : (tensor<4xi64>) -> tensor<4xi64>
  func.return
}
// CHECK:      nn.log expects a floating-point tensor, got i64

// -----
// nn.conv: weight rank
func.func @conv_weight_rank(%x: tensor<2x3x16x16xf32>, %w: tensor<32x3xf32>) {
  %y = nn.conv %x, %w {stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x16x16xf32>, tensor<32x3xf32>) -> tensor<2x32x16x16xf32>
  func.return
}
// CHECK:      conv weight must be C_out x C_in/groups x kernel..., got 32x3

// -----
// nn.conv: input rank
func.func @conv_input_rank(%x: tensor<3x16x16xf32>, %w: tensor<32x3x4x4xf32>) {
  %y = nn.conv %x, %w {stride = array<i64: 4, 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<3x16x16xf32>, tensor<32x3x4x4xf32>) -> tensor<3x32x4x4xf32>
  func.return
}
// CHECK:      conv2d input must be 4-d (batch, channels, 2 spatial), got 3x16x16

// -----
// nn.conv: one stride per spatial dim
func.func @conv_stride_count(%x: tensor<2x3x16x16xf32>, %w: tensor<32x3x4x4xf32>) {
  %y = nn.conv %x, %w {stride = array<i64: 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x16x16xf32>, tensor<32x3x4x4xf32>) -> tensor<2x32x4x4xf32>
  func.return
}
// CHECK:      conv stride needs 2 entries (one per spatial dimension), got 1

// -----
// nn.conv: channels
func.func @conv_channels(%x: tensor<2x4x16x16xf32>, %w: tensor<32x3x4x4xf32>) {
  %y = nn.conv %x, %w {stride = array<i64: 4, 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x4x16x16xf32>, tensor<32x3x4x4xf32>) -> tensor<2x32x4x4xf32>
  func.return
}
// CHECK:      conv input has 4 channels, weight 32x3x4x4 with groups=1 expects 3

// -----
// nn.conv: result shape
func.func @conv_result_shape(%x: tensor<2x3x16x16xf32>, %w: tensor<32x3x4x4xf32>) {
  %y = nn.conv %x, %w {stride = array<i64: 4, 4>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64} : (tensor<2x3x16x16xf32>, tensor<32x3x4x4xf32>) -> tensor<2x32x8x8xf32>
  func.return
}
// CHECK:      result shape 2x32x8x8

// -----
// nn.pad: pairs
func.func @pad_odd_entries(%x: tensor<4x8xf32>) {
  %y = nn.pad %x {pads = array<i64: 1, 2, 3>, value = 0.0 : f64} : (tensor<4x8xf32>) -> tensor<4x11xf32>
  func.return
}
// CHECK:      pad needs (before, after) pairs for at most 2 dimensions, got 3 entries

// -----
// nn.pad: cropping below zero
func.func @pad_crops_too_much(%x: tensor<4x8xf32>) {
  %y = nn.pad %x {pads = array<i64: -5, -5>, value = 0.0 : f64} : (tensor<4x8xf32>) -> tensor<4x0xf32>
  func.return
}
// CHECK:      crops dimension 1 below zero

// -----
// nn.repeat: one count per dim
func.func @repeat_too_few(%x: tensor<4x3xf32>) {
  %y = nn.repeat %x {repeats = array<i64: 2>} : (tensor<4x3xf32>) -> tensor<8x3xf32>
  func.return
}
// CHECK:      repeat needs at least one count per dimension (2), got 1

// -----
// nn.repeat_interleave: negative count
func.func @repeat_interleave_negative(%x: tensor<4x3xf32>) {
  %y = nn.repeat_interleave %x {repeats = -1 : i64, dim = 1 : i64} : (tensor<4x3xf32>) -> tensor<4x3xf32>
  func.return
}
// CHECK:      repeat_interleave count must be >= 0, got -1
