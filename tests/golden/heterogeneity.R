# Center-heterogeneity goldens: coxph(... + strata(center)), survdiff(... + strata(center)),
# per-center coxph, metafor::rma (FE, DL, REML), and the center x exposure LR test
# (anova on two coxph fits). Datasets: survival::veteran (celltype as "center", trt as
# exposure) and the twin (twin_analysis.csv from tests/golden/twin_frame.py; booleans 0/1).
# Run by `make golden`.
suppressPackageStartupMessages({library(survival); library(metafor)})
source(file.path(local({a <- commandArgs(FALSE); dirname(sub("^--file=", "", a[grep("^--file=", a)]))}),
                 "golden_io.R"))
pk <- c("survival", "metafor")
dir <- golden_dir()
# R stops once the log-likelihood changes by < 1e-9 (relative); carpool iterates to the
# maximiser, so the goldens are fitted to convergence too (R's infinite-coefficient check kept).
ctl <- coxph.control(eps = 1e-14, toler.inf = sqrt(1e-9), iter.max = 100)
v <- survival::veteran
# (the same rows as data_veteran.csv, which survival_core.R writes)
vet <- data.frame(time = v$time, status = v$status, trt2 = as.numeric(v$trt == 2),
                  celltype = as.character(v$celltype))
tw <- read.csv(file.path(dir, "twin_analysis.csv"), stringsAsFactors = FALSE)

cases <- list(list("veteran", vet, "time", "status", "trt2", "celltype"))
for (x in c("crs_any", "icans_any", "steroids", "tocilizumab"))
  for (ep in list(c("os_months", "os_event"), c("lfs_months", "lfs_event")))
    cases[[length(cases) + 1]] <- list("twin", tw, ep[1], ep[2], x, "site_id")

infinite <- function(expr) {
  flag <- FALSE
  val <- withCallingHandlers(expr, warning = function(w) {
    if (grepl("infinite|converge", conditionMessage(w))) flag <<- TRUE
    invokeRestart("muffleWarning")})
  list(value = val, infinite = flag)
}
cox <- NULL; lr <- NULL; meta <- NULL
for (cs in cases) {
  d <- cs[[2]]; t <- cs[[3]]; e <- cs[[4]]; x <- cs[[5]]; ctr <- cs[[6]]
  d <- d[!is.na(d[[t]]) & !is.na(d[[e]]), ]
  key <- data.frame(dataset = cs[[1]], duration = t, exposure = x)
  f0 <- coxph(as.formula(sprintf("Surv(%s, %s) ~ %s + strata(%s)", t, e, x, ctr)), data = d, control = ctl)
  s <- summary(f0)$coefficients
  cox <- rbind(cox, cbind(key, model = "stratified", coef = s[1, "coef"], se = s[1, "se(coef)"],
                          p_value = s[1, "Pr(>|z|)"], loglik = f0$loglik[2], df = NA))
  centers <- sort(unique(d[[ctr]]))
  for (c in centers[-1]) d[[paste0("x_", c)]] <- d[[x]] * (d[[ctr]] == c)
  f1 <- coxph(as.formula(sprintf("Surv(%s, %s) ~ %s + %s + strata(%s)", t, e, x,
                                 paste0("x_", centers[-1], collapse = " + "), ctr)), data = d)
  a <- anova(f0, f1)
  cox <- rbind(cox, cbind(key, model = "interaction", coef = NA, se = NA,
                          p_value = a[2, "Pr(>|Chi|)"], loglik = f1$loglik[2], df = a[2, "Df"]))
  cox$chisq <- NULL
  sd <- survdiff(as.formula(sprintf("Surv(%s, %s) ~ %s + strata(%s)", t, e, x, ctr)), data = d)
  lr <- rbind(lr, cbind(key, chisq = sd$chisq, df = length(sd$n) - 1,
                        p_value = pchisq(sd$chisq, length(sd$n) - 1, lower.tail = FALSE)))
  yi <- NULL; vi <- NULL
  for (c in centers) {
    dc <- d[d[[ctr]] == c, ]
    if (length(unique(dc[[x]])) < 2) next
    r <- infinite(coxph(as.formula(sprintf("Surv(%s, %s) ~ %s", t, e, x)), data = dc, control = ctl))
    if (r$infinite) next
    s <- summary(r$value)$coefficients
    cox <- rbind(cox, cbind(key, model = paste0("center:", c), coef = s[1, "coef"],
                            se = s[1, "se(coef)"], p_value = s[1, "Pr(>|z|)"],
                            loglik = r$value$loglik[2], df = NA))
    yi <- c(yi, s[1, "coef"]); vi <- c(vi, s[1, "se(coef)"]^2)
  }
  for (m in c("FE", "DL", "REML")) {
    fit <- rma(yi, vi, method = m, control = list(threshold = 1e-12, maxiter = 10000))
    meta <- rbind(meta, cbind(key, method = m, k = fit$k, estimate = c(fit$b), se = fit$se,
                              p_value = fit$pval, lower = fit$ci.lb, upper = fit$ci.ub,
                              tau2 = fit$tau2, i2 = fit$I2, h2 = fit$H2, q = fit$QE, q_p = fit$QEp))
  }
}
calls <- paste(
  "every coxph call but the interaction model has control = coxph.control(eps = 1e-14, toler.inf = sqrt(1e-9), iter.max = 100);",
  "  (the interaction model keeps R's default control: with an infinite interaction term, a tighter eps makes R drop it, changing the df);",
  "stratified: coxph(Surv(t, e) ~ x + strata(center)) (Efron); per center: coxph(Surv(t, e) ~ x, subset = center == c),",
  "  skipped when x has one level or coxph warns of an infinite coefficient / non-convergence;",
  "interaction: anova(fit0, coxph(Surv(t, e) ~ x + x_<c> ... + strata(center))), x_<c> = x * (center == c) for c != first center;",
  "log-rank: survdiff(Surv(t, e) ~ x + strata(center));",
  "pooling: rma(yi = per-center coef, vi = se^2, method = m, control = list(threshold = 1e-12, maxiter = 10000))",
  "twin exposures: crs_any, icans_any, steroids, tocilizumab; endpoints os_months/os_event, lfs_months/lfs_event; center site_id",
  sep = "\n")
write_golden(cox, "hetero_cox.csv", calls, pk)
write_golden(lr, "hetero_logrank.csv", calls, pk)
write_golden(meta, "hetero_meta.csv", calls, pk)
