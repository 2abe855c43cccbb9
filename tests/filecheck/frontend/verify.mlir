// `attnc verify` compiles the tiny encoder with attn-raise, runs the IR through the reference executor and
// compares with PyTorch (the exit status enforces the default tolerance, 1e-4).

// RUN: attnc verify %S/tiny_model.py:tiny_attention -p attn-raise | filecheck %s

// CHECK: max_abs_err={{[0-9]\.[0-9]+e[-+][0-9]+}} vs PyTorch{{$}}
