// RUN: attnc-opt %s -p convert-torch-to-nn --split-input-file --print-debuginfo | filecheck %s

// torch-mlir's ONNX form (generic torch.operator ops on value tensors) becomes nn ops; each keeps its
// location (the ONNX node name); signed integer element types become signless.

"func.func"() <{function_type = (!torch.vtensor<[1,4,8],f32>, !torch.vtensor<[8,8],f32>) -> !torch.vtensor<[1,4,8],f32>, sym_name = "linear"}> ({
^bb0(%x: !torch.vtensor<[1,4,8],f32>, %w: !torch.vtensor<[8,8],f32>):
  %0 = "torch.operator"(%x, %w) <{name = "onnx.MatMul"}> : (!torch.vtensor<[1,4,8],f32>, !torch.vtensor<[8,8],f32>) -> !torch.vtensor<[1,4,8],f32> loc("/layer/MatMul")
  %1 = "torch.operator"(%0) <{name = "onnx.Erf"}> : (!torch.vtensor<[1,4,8],f32>) -> !torch.vtensor<[1,4,8],f32> loc("/layer/Erf")
  %2 = "torch.operator"(%1) <{name = "onnx.Softmax"}> {torch.onnx.axis = -1 : si64} : (!torch.vtensor<[1,4,8],f32>) -> !torch.vtensor<[1,4,8],f32> loc("/layer/Softmax")
  "func.return"(%2) : (!torch.vtensor<[1,4,8],f32>) -> ()
}) : () -> ()

// CHECK-LABEL: func.func @linear(%x: tensor<1x4x8xf32>{{.*}}, %w: tensor<8x8xf32>{{.*}}) -> tensor<1x4x8xf32>
// CHECK-NEXT:    %0 = nn.matmul %x, %w : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc("/layer/MatMul")
// CHECK-NEXT:    %1 = nn.erf %0 : (tensor<1x4x8xf32>) -> tensor<1x4x8xf32> loc("/layer/Erf")
// CHECK-NEXT:    %2 = nn.softmax %1 {dim = -1 : i64} : (tensor<1x4x8xf32>) -> tensor<1x4x8xf32> loc("/layer/Softmax")
// CHECK-NEXT:    func.return %2 : tensor<1x4x8xf32>

// -----

// A permutation that also swaps the last two dimensions (kᵀ folded into the heads split) becomes
// permute-then-transpose; reshapes take their shape from the result type; integer constants stay i64.

"func.func"() <{function_type = (!torch.vtensor<[1,4,8],f32>) -> !torch.vtensor<[1,2,4,4],f32>, sym_name = "heads"}> ({
^bb0(%k: !torch.vtensor<[1,4,8],f32>):
  %shape = "torch.operator"() <{name = "onnx.Constant"}> {torch.onnx.value = dense<[1, 4, 2, 4]> : tensor<4xsi64>} : () -> !torch.vtensor<[4],si64> loc("/shape")
  %0 = "torch.operator"(%k, %shape) <{name = "onnx.Reshape"}> : (!torch.vtensor<[1,4,8],f32>, !torch.vtensor<[4],si64>) -> !torch.vtensor<[1,4,2,4],f32> loc("/Reshape")
  %1 = "torch.operator"(%0) <{name = "onnx.Transpose"}> {torch.onnx.perm = [0 : si64, 2 : si64, 3 : si64, 1 : si64]} : (!torch.vtensor<[1,4,2,4],f32>) -> !torch.vtensor<[1,2,4,4],f32> loc("/Transpose")
  "func.return"(%1) : (!torch.vtensor<[1,2,4,4],f32>) -> ()
}) : () -> ()

// CHECK-LABEL: func.func @heads
// CHECK:         %0 = nn.reshape %k : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32> loc("/Reshape")
// CHECK-NEXT:    %1 = nn.permute %0 {dims = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32> loc("/Transpose")
// CHECK-NEXT:    %2 = nn.transpose %1 {dim0 = 2 : i64, dim1 = 3 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc("/Transpose")
// CHECK-NEXT:    func.return %2

// -----

// Slice reads its constant starts/ends/axes (ends clamped to the dimension); Gather on a 2-d table is an
// embedding; Clip with a constant floor is a clamp.

"func.func"() <{function_type = (!torch.vtensor<[1,6],si64>, !torch.vtensor<[10,4],f32>) -> !torch.vtensor<[1,2,4],f32>, sym_name = "embed"}> ({
^bb0(%ids: !torch.vtensor<[1,6],si64>, %table: !torch.vtensor<[10,4],f32>):
  %none = "torch.constant.none"() : () -> !torch.none
  %starts = "torch.operator"() <{name = "onnx.Constant"}> {torch.onnx.value = dense<2> : tensor<1xsi64>} : () -> !torch.vtensor<[1],si64>
  %ends = "torch.operator"() <{name = "onnx.Constant"}> {torch.onnx.value = dense<9223372036854775807> : tensor<1xsi64>} : () -> !torch.vtensor<[1],si64>
  %axes = "torch.operator"() <{name = "onnx.Constant"}> {torch.onnx.value = dense<1> : tensor<1xsi64>} : () -> !torch.vtensor<[1],si64>
  %steps = "torch.operator"() <{name = "onnx.Constant"}> {torch.onnx.value = dense<2> : tensor<1xsi64>} : () -> !torch.vtensor<[1],si64>
  %0 = "torch.operator"(%ids, %starts, %ends, %axes, %steps) <{name = "onnx.Slice"}> : (!torch.vtensor<[1,6],si64>, !torch.vtensor<[1],si64>, !torch.vtensor<[1],si64>, !torch.vtensor<[1],si64>, !torch.vtensor<[1],si64>) -> !torch.vtensor<[1,2],si64> loc("/Slice")
  %1 = "torch.operator"(%table, %0) <{name = "onnx.Gather"}> {torch.onnx.axis = 0 : si64} : (!torch.vtensor<[10,4],f32>, !torch.vtensor<[1,2],si64>) -> !torch.vtensor<[1,2,4],f32> loc("/Gather")
  %floor = "torch.operator"() <{name = "onnx.Constant"}> {torch.onnx.value = dense<0.5> : tensor<f32>} : () -> !torch.vtensor<[],f32>
  %2 = "torch.operator"(%1, %floor, %none) <{name = "onnx.Clip"}> : (!torch.vtensor<[1,2,4],f32>, !torch.vtensor<[],f32>, !torch.none) -> !torch.vtensor<[1,2,4],f32> loc("/Clip")
  "func.return"(%2) : (!torch.vtensor<[1,2,4],f32>) -> ()
}) : () -> ()

// CHECK-LABEL: func.func @embed
// CHECK:         nn.slice %ids {dim = 1 : i64, start = 2 : i64, end = 6 : i64, step = 2 : i64} : (tensor<1x6xi64>) -> tensor<1x2xi64> loc("/Slice")
// CHECK:         nn.embedding %table, %0 : (tensor<10x4xf32>, tensor<1x2xi64>) -> tensor<1x2x4xf32> loc("/Gather")
// CHECK:         nn.clamp {{.*}} {min = 5.000000e-01 : f64} : (tensor<1x2x4xf32>) -> tensor<1x2x4xf32> loc("/Clip")
// CHECK-NOT:     torch.
