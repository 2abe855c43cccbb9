// RUN: attnc-opt %s > %t.1.mlir
// RUN: attnc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: filecheck %s < %t.2.mlir
// RUN: attnc-opt %s --print-op-generic | attnc-opt | filecheck %s

// The abft ops print in their custom form and read back to the same text (and from the generic form).

func.func @ops(%q: tensor<2x4x8x16xf32>, %m: tensor<2x1x8x8xi1>, %x: tensor<2x8x16xf32>, %w: tensor<4x16xf32>, %b: tensor<4xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x8x4xf32>) {
  %o = abft.sdpa "both" %q, %q, %q mask %m tol 2.0e-04 block 16 on_fault "recompute" {scale = 0.25 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x8x8xi1>) -> tensor<2x4x8x16xf32>
  %y = abft.linear %x, %w, %b tol 1.0e-04 on_fault "count" : (tensor<2x8x16xf32>, tensor<4x16xf32>, tensor<4xf32>) -> tensor<2x8x4xf32>
  func.return %o, %y : tensor<2x4x8x16xf32>, tensor<2x8x4xf32>
}

// CHECK-LABEL: func.func @ops
// CHECK-NEXT:    %o = abft.sdpa "both" %q, %q, %q mask %m tol 2.000000e-04 : f64 block 16 : i64 on_fault "recompute" {scale = 2.500000e-01 : f64, causal = false} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x8x8xi1>) -> tensor<2x4x8x16xf32>
// CHECK-NEXT:    %y = abft.linear %x, %w, %b tol 1.000000e-04 : f64 on_fault "count" : (tensor<2x8x16xf32>, tensor<4x16xf32>, tensor<4xf32>) -> tensor<2x8x4xf32>
