//! The shutdown, one concern a module: the drain timeline and in-flight counting
//! (`drain`), the hard deadline and the guards that hold the shutdown open (`deadline`),
//! the examples and a background worker as real processes under real signals
//! (`examples`), and a real server under load that loses no request (`zero_loss`).

mod deadline;
mod drain;
mod examples;
mod zero_loss;
