# Golden reference values for carpool's survival core, computed by R itself.
#
#   Rscript tests/golden/survival_core.R        (run by `make golden`, from the repo root)
#
# Needs only Rscript and the recommended package `survival` (Debian:
# apt-get install r-base-core r-cran-survival); installs nothing.
# Writes, next to this script:
#   data_<name>.csv       the public data sets exactly as analysed (status recoded to 0/1)
#   cox_models.csv, km_specs.csv   the models and curves below, one row each (for the tests)
#   cox.csv               coxph: coef, se per term; loglik, LR, Wald, score, concordance
#   cox_zph.csv           cox.zph (transform = "km", terms = TRUE): chisq, df, p per term + GLOBAL
#   cox_zph_resid.csv     cox.zph(fit)$y (scaled Schoenfeld residuals) with $time and $x, 4 models
#   km.csv                survfit (conf.type = "log"): records, events, median and its CI per group
#   km_curve.csv          the same fits' curves: one row per group and time (summary(fit, censored = TRUE))
#   logrank.csv           survdiff: observed, expected, variance matrix, chisq
# Every row carries the exact R call that produced it; the first line of each
# file names the R and survival versions. The twin's rows read
# twin_analysis.csv, which tests/golden/twin_frame.py writes from the demo.
suppressPackageStartupMessages(library(survival))

here <- local({
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f)) dirname(normalizePath(f)) else "tests/golden"
})
versions <- c(
  sprintf("# R %s.%s, survival %s; written by tests/golden/survival_core.R",
          R.version$major, R.version$minor, packageVersion("survival")),
  "# data: lung2 <- within(survival::lung, status <- status - 1L) (R's 1/2 recoded to 0/1),",
  "#   plus one = 1, age_sex = age + sex, ecog = factor(ph.ecog); aml2, ovarian2, veteran2:",
  "#   survival::aml, ovarian, veteran (status already 0/1); twin <- read.csv('twin_analysis.csv')",
  "#   with bm_blasts_ge20 = bm_blasts_pct >= 20; twin_cr <- twin[cr_d30 == 1, ]. Factors are",
  "#   relevel()ed to the reference the model names; the rows' ids are spelled out below.")
num <- function(x) sprintf("%.17g", as.numeric(x))

# Comment lines first: versions, then "# <id>: <exact R call>" for every id in the rows.
write_golden <- function(rows, name) {
  path <- file.path(here, name)
  calls <- unique(rows[, c(1, 2)])
  con <- file(path, "w")
  writeLines(versions, con)
  writeLines(sprintf("# %s: %s", calls[[1]], calls[[2]]), con)
  write.csv(rows[, -2], con, row.names = FALSE, na = "NA")
  close(con)
}

# ---- data ------------------------------------------------------------------
# R's data sets code status 1 = censored, 2 = dead (lung); it is recoded to 0/1 here,
# explicitly, and the recoded data are written out so Python reads the same rows.
lung2 <- within(survival::lung, { status <- status - 1L })
lung2$one <- 1                          # constant: coxph reports NA
lung2$age_sex <- lung2$age + lung2$sex  # collinear with age + sex: NA
lung2$ecog <- factor(lung2$ph.ecog)
aml2 <- survival::aml                    # status already 0/1
aml2$x <- as.character(aml2$x)
ovarian2 <- survival::ovarian            # fustat already 0/1
veteran2 <- survival::veteran            # status already 0/1
veteran2$celltype <- as.character(veteran2$celltype)
twin <- read.csv(file.path(here, "twin_analysis.csv"), stringsAsFactors = FALSE)
twin$bm_blasts_ge20 <- as.integer(twin$bm_blasts_pct >= 20)
twin_cr <- twin[!is.na(twin$cr_d30) & twin$cr_d30 == 1, ]

datasets <- list(lung2 = lung2, aml2 = aml2, ovarian2 = ovarian2, veteran2 = veteran2,
                 twin = twin, twin_cr = twin_cr)
for (nm in c("lung", "aml", "ovarian", "veteran")) {
  d <- datasets[[paste0(nm, "2")]]
  d[] <- lapply(d, function(col) if (is.factor(col)) as.character(col) else col)
  write.csv(d, file.path(here, sprintf("data_%s.csv", nm)), row.names = FALSE, na = "")
}

# ---- Cox -----------------------------------------------------------------------
# coxph stops when the log-likelihood changes by < eps (default 1e-9) relative; that can
# leave coefficients ~5e-8 (relative) short of the maximum (lung, ties = "breslow": the sex
# p-value 0.0022076010266 vs 0.0022076009181 at the maximum). eps = 1e-11 (still above
# toler.chol, as coxph.control asks) converges every model here to the maximiser.
# id, data, time, status, covariates, factors (name = reference level), ties, strata
cox_models <- list(
  list("lung_age_sex", "lung2", "time", "status", c("age", "sex"), list(), "efron", NULL),
  list("lung_age_sex_breslow", "lung2", "time", "status", c("age", "sex"), list(), "breslow", NULL),
  list("lung_ecog", "lung2", "time", "status", c("age", "ecog"), list(ecog = "0"), "efron", NULL),
  list("lung_strata_sex", "lung2", "time", "status", c("age", "ph.karno"), list(), "efron", "sex"),
  list("lung_constant", "lung2", "time", "status", c("age", "one", "sex"), list(), "efron", NULL),
  list("lung_collinear", "lung2", "time", "status", c("age", "sex", "age_sex"), list(), "efron", NULL),
  list("aml_x", "aml2", "time", "status", c("x"), list(x = "Maintained"), "efron", NULL),
  list("ovarian", "ovarian2", "futime", "fustat", c("age", "resid.ds", "rx", "ecog.ps"), list(),
       "efron", NULL),
  list("veteran", "veteran2", "time", "status", c("trt", "karno", "diagtime", "celltype"),
       list(celltype = "adeno"), "efron", NULL),
  list("veteran_breslow_strata", "veteran2", "time", "status", c("karno", "age"), list(),
       "breslow", "celltype"),
  list("twin_os", "twin", "os_months", "os_event",
       c("bm_blasts_ge20", "steroids", "tocilizumab", "tox_group"), list(tox_group = "none"),
       "efron", NULL),
  list("twin_lfs", "twin_cr", "lfs_months", "lfs_event",
       c("bm_blasts_ge20", "steroids", "tocilizumab", "tox_group"), list(tox_group = "none"),
       "efron", NULL)
)
screen <- c("age_years", "sex", "prior_lines", "dose_1e6_per_kg", "bm_blasts_ge20", "steroids",
            "tocilizumab", "tox_group")
for (ep in list(c("os", "twin", "os_months", "os_event"),
                c("lfs", "twin_cr", "lfs_months", "lfs_event")))
  for (v in screen)
    cox_models[[length(cox_models) + 1]] <- list(
      sprintf("twin_%s_screen_%s", ep[1], v), ep[2], ep[3], ep[4], v,
      switch(v, sex = list(sex = "M"), tox_group = list(tox_group = "none"), list()),
      "efron", NULL)

fit_model <- function(m) {
  d <- datasets[[m[[2]]]]
  for (f in names(m[[6]])) d[[f]] <- relevel(factor(d[[f]]), ref = m[[6]][[f]])
  rhs <- paste(m[[5]], collapse = " + ")
  if (!is.null(m[[8]])) rhs <- paste0(rhs, " + strata(", m[[8]], ")")
  form <- sprintf("Surv(%s, %s) ~ %s", m[[3]], m[[4]], rhs)
  call <- sprintf("coxph(%s, data = %s, ties = \"%s\", control = coxph.control(eps = 1e-11))",
                  form, m[[2]], m[[7]])
  fit <- coxph(as.formula(form), data = d, ties = m[[7]], control = coxph.control(eps = 1e-11))
  list(fit = fit, call = call, factors = m[[6]], data = d)
}

# R names a factor's coefficient <variable><level>; carpool names it <variable>:<level>
term_name <- function(coefname, factors) {
  for (f in names(factors)) if (startsWith(coefname, f) && coefname != f)
    return(paste0(f, ":", substring(coefname, nchar(f) + 1)))
  coefname
}

# the specs themselves, so the Python tests fit exactly these models
write.csv(do.call(rbind, lapply(cox_models, function(m) data.frame(
  model = m[[1]], data = m[[2]], time = m[[3]], status = m[[4]],
  covariates = paste(m[[5]], collapse = " "),
  factors = paste(names(m[[6]]), unlist(m[[6]]), sep = "=", collapse = " "),
  ties = m[[7]], strata = if (is.null(m[[8]])) "" else m[[8]]))),
  file.path(here, "cox_models.csv"), row.names = FALSE)

cox_rows <- list()
zph_rows <- list()
resid_rows <- list()
for (m in cox_models) {
  r <- fit_model(m)
  fit <- r$fit
  s <- summary(fit)
  add <- function(term, quantity, value)
    cox_rows[[length(cox_rows) + 1]] <<- data.frame(
      model = m[[1]], call = r$call, term = term, quantity = quantity, value = num(value))
  cf <- coef(fit)
  se <- sqrt(diag(vcov(fit)))  # NA for an aliased term
  for (j in seq_along(cf)) {
    t <- term_name(names(cf)[j], r$factors)
    add(t, "coef", cf[j])
    add(t, "se", if (is.na(cf[j])) NA else se[names(cf)[j]])
    add(t, "p_value", s$coefficients[j, "Pr(>|z|)"])
  }
  add("", "n", fit$n)
  add("", "events", fit$nevent)
  add("", "loglik_null", fit$loglik[1])
  add("", "loglik", fit$loglik[2])
  # summary() rounds the Wald and score statistics it prints; the fit holds them unrounded
  add("", "lr", 2 * (fit$loglik[2] - fit$loglik[1]))
  add("", "wald", fit$wald.test)
  add("", "score", fit$score)
  add("", "df", sum(!is.na(cf)))
  # a multi-level factor's global tests: Wald on its coefficients, LR against the
  # model refitted without it on the same rows (as carpool's CoxResult.factors)
  for (f in names(r$factors)) {
    idx <- which(startsWith(names(cf), f) & !is.na(cf))
    if (length(idx) < 2) next
    add(f, "factor_wald", drop(cf[idx] %*% solve(vcov(fit)[idx, idx], cf[idx])))
    rest <- setdiff(m[[5]], f)
    ll0 <- if (length(rest)) {
      rform <- sprintf("Surv(%s, %s) ~ %s", m[[3]], m[[4]], paste(rest, collapse = " + "))
      if (!is.null(m[[8]])) rform <- paste0(rform, " + strata(", m[[8]], ")")
      used <- if (is.null(fit$na.action)) r$data else r$data[-fit$na.action, ]
      coxph(as.formula(rform), data = used, ties = m[[7]],
            control = coxph.control(eps = 1e-11))$loglik[2]
    } else fit$loglik[1]
    add(f, "factor_lr", 2 * (fit$loglik[2] - ll0))
  }
  add("", "concordance", fit$concordance["concordance"])
  add("", "concordance_se", fit$concordance["std"])
  zcall <- sprintf("cox.zph(%s)", r$call)
  z <- tryCatch(cox.zph(fit), error = function(e) NULL)
  if (!is.null(z) && m[[1]] %in% c("lung_age_sex", "lung_ecog", "veteran", "twin_os")) {
    for (j in seq_len(ncol(z$y)))
      resid_rows[[length(resid_rows) + 1]] <- data.frame(
        model = m[[1]], call = zcall, term = colnames(z$y)[j], time = num(z$time),
        transformed = num(z$x), scaled = num(z$y[, j]))
  }
  if (!is.null(z)) {
    for (j in seq_len(nrow(z$table)))
      zph_rows[[length(zph_rows) + 1]] <- data.frame(
        model = m[[1]], call = zcall, term = rownames(z$table)[j],
        chisq = num(z$table[j, "chisq"]), df = num(z$table[j, "df"]),
        p = num(z$table[j, "p"]))
  }
}
write_golden(do.call(rbind, cox_rows), "cox.csv")
write_golden(do.call(rbind, zph_rows), "cox_zph.csv")
write_golden(do.call(rbind, resid_rows), "cox_zph_resid.csv")

# ---- Kaplan-Meier and log-rank ---------------------------------------------------
# id, data, time, status, group (NULL = overall), strata (log-rank only), reverse (follow-up)
km_specs <- list(
  list("lung_sex", "lung2", "time", "status", "sex", NULL),
  list("lung_ecog", "lung2", "time", "status", "ph.ecog", NULL),
  list("lung_all", "lung2", "time", "status", NULL, NULL),
  list("lung_sex_strata_ecog", "lung2", "time", "status", "sex", "ph.ecog"),
  list("aml_x", "aml2", "time", "status", "x", NULL),
  list("ovarian_rx", "ovarian2", "futime", "fustat", "rx", NULL),
  list("veteran_celltype", "veteran2", "time", "status", "celltype", NULL),
  list("veteran_trt_strata_celltype", "veteran2", "time", "status", "trt", "celltype")
)
for (ep in list(c("os", "twin", "os_months", "os_event"),
                c("lfs", "twin_cr", "lfs_months", "lfs_event"))) {
  km_specs[[length(km_specs) + 1]] <- list(sprintf("twin_%s_all", ep[1]), ep[2], ep[3], ep[4],
                                           NULL, NULL)
  for (g in c("crs_any", "icans_any", "crs_grade_group", "icans_grade_group",
              "crs_icans_concurrent", "tox_group", "tocilizumab", "steroids"))
    km_specs[[length(km_specs) + 1]] <- list(sprintf("twin_%s_%s", ep[1], g), ep[2], ep[3],
                                             ep[4], g, NULL)
}

write.csv(do.call(rbind, lapply(km_specs, function(k) data.frame(
  spec = k[[1]], data = k[[2]], time = k[[3]], status = k[[4]],
  group = if (is.null(k[[5]])) "" else k[[5]], strata = if (is.null(k[[6]])) "" else k[[6]]))),
  file.path(here, "km_specs.csv"), row.names = FALSE)

km_rows <- list()
lr_rows <- list()
km_add <- function(spec, call, group, time, quantity, value)
  km_rows[[length(km_rows) + 1]] <<- data.frame(
    spec = spec, call = call, group = group, time = num(time), quantity = quantity,
    value = num(value))
curve_rows <- list()

km_fit <- function(id, d, form, call) {
  fit <- survfit(as.formula(form), data = d, conf.type = "log")
  s <- summary(fit, censored = TRUE)
  grp <- if (is.null(s$strata)) rep("all", length(s$time)) else sub("^.*=", "", s$strata)
  curve_rows[[length(curve_rows) + 1]] <<- data.frame(
    spec = id, call = call, group = grp, time = num(s$time), n_risk = s$n.risk,
    n_event = s$n.event, n_censor = s$n.censor, surv = num(s$surv), lower = num(s$lower),
    upper = num(s$upper))
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  rn <- if (is.null(rownames(tab))) "all" else sub("^.*=", "", rownames(tab))
  for (i in seq_len(nrow(tab)))
    for (q in c("records", "events", "median", "0.95LCL", "0.95UCL"))
      km_add(id, call, rn[i], NA, q, tab[i, q])
}

for (k in km_specs) {
  d <- datasets[[k[[2]]]]
  rhs <- if (is.null(k[[5]])) "1" else k[[5]]
  form <- sprintf("Surv(%s, %s) ~ %s", k[[3]], k[[4]], rhs)
  if (is.null(k[[6]]))
    km_fit(k[[1]], d, form, sprintf("survfit(%s, data = %s, conf.type = \"log\")", form, k[[2]]))
  if (is.null(k[[5]])) {  # overall curve: also the reverse-KM follow-up
    rform <- sprintf("Surv(%s, 1 - %s) ~ 1", k[[3]], k[[4]])
    km_fit(paste0(k[[1]], "_followup"), d, rform,
           sprintf("survfit(%s, data = %s, conf.type = \"log\")", rform, k[[2]]))
    next
  }
  if (!is.null(k[[6]])) form <- paste0(form, " + strata(", k[[6]], ")")
  call <- sprintf("survdiff(%s, data = %s)", form, k[[2]])
  sd <- survdiff(as.formula(form), data = d)
  obs <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
  ex <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
  lv <- sub("^.*=", "", names(sd$n))
  for (i in seq_along(lv)) {
    lr_rows[[length(lr_rows) + 1]] <- data.frame(spec = k[[1]], call = call, group = lv[i],
      quantity = c("n", "observed", "expected", paste0("var:", lv)),
      value = num(c(sd$n[i], obs[i], ex[i], sd$var[i, ])))
  }
  df <- sum(ex > 0) - 1
  lr_rows[[length(lr_rows) + 1]] <- data.frame(spec = k[[1]], call = call, group = "",
    quantity = c("chisq", "df", "p_value"),
    value = num(c(sd$chisq, df, pchisq(sd$chisq, df, lower.tail = FALSE))))
}
write_golden(do.call(rbind, km_rows), "km.csv")
write_golden(do.call(rbind, curve_rows), "km_curve.csv")
write_golden(do.call(rbind, lr_rows), "logrank.csv")
cat("golden files written to", here, "\n")
