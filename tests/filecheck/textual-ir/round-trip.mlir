// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s -p attn-raise,attn-raise --print-between-passes | filecheck %s --check-prefix=BETWEEN

// What attnc-opt (and `attnc compile`'s model.mlir, same printer) writes parses back to the same module:
// print, re-parse, print again; both prints must be identical (diff), and the second is checked.

// SSA names. The parser drops one `_<digits>` suffix from a name to form its hint, so %split_0, %split_1 and
// %split_2 all carry the hint `split` and %split_1_0, %split_1_1 the hint `split_1`. The printer numbers a
// repeated hint `split`, `split_1`, `split_2`, ...; a hint `split_1` must then skip the names already
// taken instead of printing a second %split_1.

// CHECK-LABEL: func.func @colliding_name_hints(
// CHECK-SAME:      %x: tensor<6xf32>
// CHECK-NEXT:    %split = nn.slice %x
// CHECK-NEXT:    %split_1 = nn.slice %x
// CHECK-NEXT:    %split_2 = nn.slice %x
// CHECK-NEXT:    %split_1_1 = nn.slice %split
// CHECK-NEXT:    %split_1_2 = nn.slice %split
// CHECK-NEXT:    %add = nn.add %split_1_1, %split_1_2
// CHECK-NEXT:    %add_1 = nn.add %split_1, %split_2
// CHECK-NEXT:    func.return %add, %add_1
// BETWEEN:       IR after attn-raise:
// BETWEEN-NEXT:  builtin.module {
// BETWEEN-NEXT:    func.func @colliding_name_hints(
// BETWEEN-NEXT:      %split = nn.slice %x
// BETWEEN-NEXT:      %split_1 = nn.slice %x
// BETWEEN-NEXT:      %split_2 = nn.slice %x
// BETWEEN-NEXT:      %split_1_1 = nn.slice %split
// BETWEEN-NEXT:      %split_1_2 = nn.slice %split
func.func @colliding_name_hints(%x: tensor<6xf32>) -> (tensor<1xf32>, tensor<2xf32>) {
  %split_0 = nn.slice %x {dim = 0 : i64, start = 0 : i64, end = 2 : i64, step = 1 : i64} : (tensor<6xf32>) -> tensor<2xf32>
  %split_1 = nn.slice %x {dim = 0 : i64, start = 2 : i64, end = 4 : i64, step = 1 : i64} : (tensor<6xf32>) -> tensor<2xf32>
  %split_2 = nn.slice %x {dim = 0 : i64, start = 4 : i64, end = 6 : i64, step = 1 : i64} : (tensor<6xf32>) -> tensor<2xf32>
  %split_1_0 = nn.slice %split_0 {dim = 0 : i64, start = 0 : i64, end = 1 : i64, step = 1 : i64} : (tensor<2xf32>) -> tensor<1xf32>
  %split_1_1 = nn.slice %split_0 {dim = 0 : i64, start = 1 : i64, end = 2 : i64, step = 1 : i64} : (tensor<2xf32>) -> tensor<1xf32>
  %add = nn.add %split_1_0, %split_1_1 : (tensor<1xf32>, tensor<1xf32>) -> tensor<1xf32>
  %add_1 = nn.add %split_1, %split_2 : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %add, %add_1 : tensor<1xf32>, tensor<2xf32>
}

// Block names follow the same rule: ^exit_1 and ^exit_2 carry the hint `exit`, ^exit_1_0 the hint `exit_1`.

// CHECK-LABEL: func.func @colliding_block_names(
// CHECK:       ^exit:
// CHECK:       ^exit_1:
// CHECK:       ^exit_1_1:
func.func @colliding_block_names(%c: i1) {
  cf.cond_br %c, ^exit_1, ^exit_2
^exit_1:
  cf.br ^exit_1_0
^exit_2:
  cf.br ^exit_1_0
^exit_1_0:
  func.return
}

// Floats. A dense literal holding a non-finite value is printed as MLIR's raw little-endian hex buffer, which
// every reader takes as bytes; MLIR's element form `0xFF800000` (the f32 bit pattern of -inf) is read as a
// bit pattern, not as the integer 4286578688. A splat is detected by bits, so -0.0 is not folded into 0.0.
// Finite values print as exact decimals (123456792.0 has no 9-digit form with a decimal point).

// CHECK-LABEL: func.func @float_constants(
// CHECK-NEXT:    %ninf = nn.constant dense<"0x000080FF"> : tensor<f32>
// CHECK-NEXT:    %pinf = nn.constant dense<"0x0000807F"> : tensor<2xf32>
// CHECK-NEXT:    %nan = nn.constant dense<"0x0000C07F"> : tensor<f32>
// CHECK-NEXT:    %mixed = nn.constant dense<"0x0000803F000080FF0000C07F00000080"> : tensor<4xf32>
// CHECK-NEXT:    %nzero = nn.constant dense<-0.000000e+00> : tensor<f32>
// CHECK-NEXT:    %zeros = nn.constant dense<[0.000000e+00, -0.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %big = nn.constant dense<1.23456792e+08> : tensor<f32>
// CHECK-NEXT:    %big64 = nn.constant dense<1.2345678901234568e+16> : tensor<f64>
// CHECK-NEXT:    %third = nn.constant dense<0.333333343> : tensor<f32>
// CHECK-NEXT:    %grid = nn.constant dense<{{\[\[}}1.000000e+00, 2.500000e-01], [-3.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>
// CHECK-NEXT:    %f64inf = nn.constant dense<"0x000000000000F0FF"> : tensor<f64>
// CHECK-NEXT:    %f16inf = nn.constant dense<"0x00FC"> : tensor<f16>
// CHECK-NEXT:    %bf16inf = nn.constant dense<"0x80FF"> : tensor<bf16>
// CHECK-NEXT:    %f16 = nn.constant dense<9.997560e-02> : tensor<f16>
// CHECK-NEXT:    %bf16 = nn.constant dense<[1.000980e-01, -0.000000e+00]> : tensor<2xbf16>
// CHECK-NEXT:    %fill = nn.full {value = 0xfff0000000000000 : f64} : tensor<2xf32>
// CHECK-NEXT:    %bools = nn.constant dense<[true, false]> : tensor<2xi1>
// CHECK-NEXT:    %ints = nn.constant dense<[-9223372036854775808, 255]> : tensor<2xi64>
// CHECK-NEXT:    %hexint = nn.constant dense<255> : tensor<i32>
func.func @float_constants() {
  %ninf = nn.constant dense<0xFF800000> : tensor<f32>
  %pinf = nn.constant dense<0x7F800000> : tensor<2xf32>
  %nan = nn.constant dense<0x7FC00000> : tensor<f32>
  %mixed = nn.constant dense<[1.0, 0xFF800000, 0x7FC00000, -0.0]> : tensor<4xf32>
  %nzero = nn.constant dense<-0.0> : tensor<f32>
  %zeros = nn.constant dense<[0.0, -0.0]> : tensor<2xf32>
  %big = nn.constant dense<0x4CEB79A3> : tensor<f32>
  %big64 = nn.constant dense<12345678901234567.0> : tensor<f64>
  %third = nn.constant dense<0.333333343> : tensor<f32>
  %grid = nn.constant dense<[[1.0, 0.25], [-3.0, 4.0]]> : tensor<2x2xf32>
  %f64inf = nn.constant dense<0xFFF0000000000000> : tensor<f64>
  %f16inf = nn.constant dense<0xFC00> : tensor<f16>
  %bf16inf = nn.constant dense<0xFF80> : tensor<bf16>
  %f16 = nn.constant dense<0.1> : tensor<f16>
  %bf16 = nn.constant dense<[0.1, -0.0]> : tensor<2xbf16>
  %fill = nn.full {value = 0xFFF0000000000000 : f64} : tensor<2xf32>
  %bools = nn.constant dense<[true, false]> : tensor<2xi1>
  %ints = nn.constant dense<[-9223372036854775808, 255]> : tensor<2xi64>
  %hexint = nn.constant dense<0xFF> : tensor<i32>
  func.return
}
