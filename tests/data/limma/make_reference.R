# Reference numbers from limma (Debian r-bioc-limma 3.54.1, r-cran-statmod) for
# tests/test_associate.py. Run from this folder after make_inputs.py: Rscript make_reference.R
library(limma)
values <- as.matrix(read.delim("values.tsv", row.names = 1))
design <- as.matrix(read.delim("design.tsv"))
treatment <- cbind(Intercept = 1, B = design[, "B"], C = design[, "C"], age = design[, "age"])
fit <- lmFit(values, design)
direct <- lmFit(values, treatment)
contrasts <- makeContrasts(BvsRest = B - (A + C) / 2, CvsA = C - A, levels = colnames(design))
for (robust in c(FALSE, TRUE)) {
  eb <- eBayes(contrasts.fit(fit, contrasts), robust = robust)
  ebd <- eBayes(direct, robust = robust)
  tag <- if (robust) "robust" else "plain"
  out <- data.frame(feature = rownames(values),
                    B_coef = ebd$coefficients[, "B"], B_t = ebd$t[, "B"], B_p = ebd$p.value[, "B"],
                    BvsRest_coef = eb$coefficients[, "BvsRest"], BvsRest_t = eb$t[, "BvsRest"],
                    BvsRest_p = eb$p.value[, "BvsRest"], CvsA_t = eb$t[, "CvsA"],
                    F = eb$F, F_p = eb$F.p.value, sigma = eb$sigma,
                    s2_post = eb$s2.post, df_total = eb$df.total,
                    df_prior = eb$df.prior, s2_prior = eb$s2.prior)
  write.table(out, sprintf("limma_%s.tsv", tag), sep = "\t", quote = FALSE, row.names = FALSE)
}
