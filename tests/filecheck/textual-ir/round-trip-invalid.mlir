// RUN: not attnc-opt %s 2>&1 | filecheck %s

// A hexadecimal element of a float dense literal is a bit pattern; one wider than the element type is an
// error at its location, not a silently truncated or converted value.

// CHECK:      round-trip-invalid.mlir:[[# @LINE + 3]]:26
// CHECK:      hexadecimal float literal does not fit in f32
func.func @too_wide_bit_pattern() {
  %c = nn.constant dense<0x1FF800000> : tensor<f32>
  func.return
}
