//! Code shared by tests and benchmarks of mp-codegen.

pub mod hand_calc;
