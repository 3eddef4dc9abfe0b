"""Post-processing of the rendered track, streamed in chunks so memory stays flat with length:
resampling to the delivery rate, EBU R128 loudness measurement, true-peak limiting."""
