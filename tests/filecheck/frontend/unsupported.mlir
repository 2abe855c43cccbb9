// An ATen op without an importer handler (aten.sort, used inside the `router` submodule) is a one-line
// error naming the op and the module path, with a non-zero exit and no traceback.

// RUN: not attnc compile %S/tiny_model.py:unsupported -o %t 2>&1 | filecheck %s

// CHECK-NOT:   Traceback
// CHECK:       attnc: error: unsupported ATen op 'aten.sort.default' (node '{{[a-z_0-9]+}}') at 'router'
// CHECK-NOT:   Traceback
