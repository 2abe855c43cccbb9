// RUN: not attnc-opt %s -p convert-torch-to-nn 2>&1 | filecheck %s

// An ONNX op without a rule is an error naming the op and the node.

"func.func"() <{function_type = (!torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32>, sym_name = "negative_unsupported"}> ({
^bb0(%x: !torch.vtensor<[4],f32>):
  %0 = "torch.operator"(%x) <{name = "onnx.Hardmax"}> : (!torch.vtensor<[4],f32>) -> !torch.vtensor<[4],f32> loc("/head/Hardmax")
  "func.return"(%0) : (!torch.vtensor<[4],f32>) -> ()
}) : () -> ()

// CHECK: attnc-opt: error: convert-torch-to-nn: at '/head/Hardmax': unsupported ONNX op 'Hardmax' (node '/head/Hardmax')
