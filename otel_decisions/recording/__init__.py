"""Recording: the seed-compatible `Runtime` over one recorder core."""
