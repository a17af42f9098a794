# Reference numbers from sva::ComBat (Debian r-bioc-sva) for tests/test_preprocess.py.
# Run from this folder after make_inputs.py: Rscript make_reference.R
library(sva)
values <- as.matrix(read.delim("values.tsv", row.names = 1))
samples <- read.delim("samples.tsv", stringsAsFactors = TRUE)
protected <- model.matrix(~ disease + age, data = samples)
corrected <- ComBat(values, batch = samples$batch, mod = protected, par.prior = TRUE)
write.table(round(corrected, 10), "sva_disease_age.tsv", sep = "\t", quote = FALSE, col.names = NA)
plain <- ComBat(values, batch = samples$batch, par.prior = TRUE)
write.table(round(plain, 10), "sva_plain.tsv", sep = "\t", quote = FALSE, col.names = NA)
