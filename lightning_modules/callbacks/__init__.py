"""Lightning callbacks: sample, translation and reconstruction grids, generative metrics, run bookkeeping."""
