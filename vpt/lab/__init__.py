"""The CPU lab: does value feedback steer continued pretraining, and do the ablations not?

A controlled, small version of the paper's language experiment (sections 3-4, A.6) that runs on
2 CPU cores, with statistics over seeds. Fixed in config/lab.yaml before any tuning:

Data (vpt.lab.data), all from the seeded problem generator (vpt.data.synth):
  - the unlabeled corpus mixes the 8 problem families; the downstream skill, one family (the
    target, `percent`), is a known minority (target_share, ~15% of documents) and appears only
    through its *training* templates;
  - the feedback set: labeled target-family problems from the training templates, used only to
    compute g_down (the learner is never trained on them);
  - validation and test: target-family problems from *held-out* templates, with their own
    generator seeds; validation is for tuning, test is the report's metric and is not looked at
    during tuning. A held-out template shares no (template, numbers) combination with training;
  - nontarget: the other families, to show any trade-off.

Learner: a tiny Qwen2 pretrained from scratch with ntp on the corpus (one base model), then
continued-pretrained by each method with the project's compute-matched Trainer: same steps,
batch, optimizer, schedule and, per seed, the same data order. Seeds (>= 5) vary data order,
designer initialization and feedback batches; method comparisons are paired by seed.

Metrics (vpt.lab.evaluate): the pre-registered primary metric, held-out answer-token accuracy
(teacher-forced argmax); held-out answer loss and greedy exact-match accuracy against learner
steps; the non-target families' loss and token accuracy.
Tuning (vpt.lab.tune): the same number of trials per method on the validation split at a seed
outside the report's seeds; the chosen values are pinned in lab.method_train, and the tuning
summary says whether the pins are the winners.
Statistics (vpt.stats, shared with vpt.language.probe): mean and Student-t 95% CI over seeds;
paired t-test and exact Wilcoxon signed-rank against ntp on the final metric; Pearson r with a
BCa bootstrap CI for the A.6 probe (vpt.lab.probe, which reuses vpt.language.probe).
The designer (vpt.lab.alpha): alpha per problem family and per kind of target token (numbers,
operators, words, other) on documents of every family.

Positive control (config/lab_conflict.yaml, lab.conflict): the same lab with a conflicting
source in the unlabeled stream. A seeded share of the target family's corpus documents write one
step differently from the feedback and the test ("/ 10" for "/ 100"); the primary metric there
is the held-out argmax accuracy at that token. Only a designer that reads the value signal can
tell those labels apart; the ablations cannot.

Wiring: a lab preset (a config with a `lab:` section) is validated against
workflow/schemas/lab.schema.yaml by vpt.config, like every config; the Snakefile then loads only
workflow/rules/lab.smk, whose targets and stamps come from vpt.lab.targets and whose paths are
vpt.lab.paths. Each job runs `vpt lab data|base|tune|tuning|run|probe|report` (vpt.lab.commands);
the report is results/lab/report.md with figures under results/lab/.
"""
