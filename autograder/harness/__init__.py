"""The harness: trains briefly with the student's code, samples with its samplers and scores the samples."""
