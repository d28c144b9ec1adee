//! The scenarios of the behaviour suite, by what they exercise. Each takes
//! the constructor of a fresh [`Place`](crate::support::Place).

mod failures;
mod interest;
mod nodes;
mod offline;

pub use failures::*;
pub use interest::*;
pub use nodes::*;
pub use offline::*;

use crate::support::Place;

/// How a scenario gets its place.
pub type NewPlace = fn() -> Place;
