# Golden reference values for exact tests of r x c tables: R's fisher.test
# (Fisher-Freeman-Halton for tables larger than 2 x 2), computed by R itself.
#
#   Rscript tests/golden/proportions.R        (run by `make golden`, from the repo root)
#
# Needs only Rscript (fisher.test is in base R's stats). Writes fisher.csv next to this
# script: one row per table, its cells (row-major, "r x c: a b c ...") and the p-value; the
# header names the R version and the exact call. The twin's tables are the response
# cross-tabs of twin_analysis.csv (cr_d30 for everyone; mrd_neg_cr among CR patients) by
# each grouping whose table is larger than 2 x 2.
here <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f)) dirname(normalizePath(f)) else "tests/golden"
})
num <- function(x) sprintf("%.17g", as.numeric(x))

tables <- list(
  small_2x3 = matrix(c(1, 8, 2, 9, 10, 12), 2, 3),
  balanced_2x3 = matrix(c(3, 1, 1, 3, 2, 2), 2, 3),
  sparse_3x3 = matrix(c(3, 0, 1, 0, 4, 1, 1, 2, 5), 3, 3),
  tea_2x2 = matrix(c(3, 1, 1, 3), 2, 2)   # ?fisher.test's TeaTasting
)
twin <- read.csv(file.path(here, "twin_analysis.csv"), stringsAsFactors = FALSE)
cr <- twin[!is.na(twin$cr_d30) & twin$cr_d30 == 1, ]
for (g in c("crs_grade_group", "icans_grade_group", "tox_group")) {
  tables[[paste0("twin_cr_by_", g)]] <- table(twin$cr_d30, twin[[g]])
  tables[[paste0("twin_mrd_neg_cr_by_", g)]] <- table(cr$mrd_neg_cr, cr[[g]])
}

rows <- do.call(rbind, lapply(names(tables), function(nm) {
  t <- as.matrix(tables[[nm]])
  data.frame(table = nm,
             cells = sprintf("%d x %d: %s", nrow(t), ncol(t),
                             paste(as.vector(t(t)), collapse = " ")),
             p_value = num(fisher.test(t)$p.value))
}))
con <- file(file.path(here, "fisher.csv"), "w")
writeLines(c(sprintf("# R %s.%s; written by tests/golden/proportions.R", R.version$major,
                     R.version$minor),
             "# every row: fisher.test(<the table in cells, row-major>)$p.value"), con)
write.csv(rows, con, row.names = FALSE)
close(con)
cat("fisher.csv written to", here, "\n")
