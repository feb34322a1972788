"""Put each known bug back, one at a time, and check that the tests guarding its rule go red.

Not collected by pytest and not part of CI (it runs the guarding tests once per bug, a few
minutes in all); run it after changing a rule or its test:

    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python -m tests.rule_mutations [NAME-SUBSTRING]

Each entry: (the bug, file, the text that is right, the text that was wrong, the tests). A line
"pattern not found" means the code moved on: update the entry, do not delete it. The source file is
restored after each run, also when the run is interrupted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEARCH = "tests/test_search.py"
PAGES = "tests/test_pages.py"
PARETO = "tests/test_pareto.py"
CLI = "tests/test_cli.py"
DEVICE = "tests/test_device.py"
HABITS = "tests/test_cli_habits.py"
API = "tests/test_api.py"

BUGS = [
    # the search
    ("resume replays the first run's trials", "nas/study/trials.py", "generate_state(1)[0]",
     "generate_state(1)[0] * 0 + seed + 1000 * worker_index",
     [f"{SEARCH}::test_resume_continues_with_new_trials", f"{SEARCH}::test_a_resumed_run_seeds_its_samplers_anew"]),
    ("objective is the test accuracy", "nas/study/trials.py", "val=scores.val if scores is not None else result.val,",
     "val=scores.test if scores is not None else result.test,", [f"{SEARCH}::test_objective_is_the_integer_engines_validation_accuracy"]),
    ("objectives() returns test accuracy", "nas/study/record.py", "return self.score.value, float(self.total_bytes)",
     "return self.test.value, float(self.total_bytes)", [f"{SEARCH}::test_objective_is_the_integer_engines_validation_accuracy"]),
    ("resume settings not checked", "nas/study/storage.py", "    if differences:\n        raise NasError(",
     "    if False:\n        raise NasError(", [f"{SEARCH}::test_resume_with_other_settings_is_refused"]),
    ("seed not compared on resume", "nas/study/settings.py", '    ("--seed", "seed"),\n',
     "", [f"{SEARCH}::test_resume_with_other_settings_is_refused"]),
    ("space not compared on resume", "nas/study/settings.py", "        for key in self.space:", "        for key in []:",
     [f"{SEARCH}::test_resume_with_other_settings_is_refused"]),
    ("Ctrl-C raised inside a storage read", "nas/study/optimize.py",
     "handler_installed = threading.current_thread() is threading.main_thread()", "handler_installed = False",
     [f"{SEARCH}::test_ctrl_c_never_lands_inside_a_storage_read"]),
    ("a half-written trial record is read", "nas/study/record.py", "if all(key in attrs for key in keys) else None",
     "if keys[0] in attrs else None", [f"{PARETO}::test_a_trial_still_being_written_reads_as_unscored"]),
    ("pareto prints 'this run'", "nas/cli/studies.py", "    return report_study(location, as_json=",
     "    return report_study(location, 0.0, as_json=", [f"{SEARCH}::test_search_writes_the_front_files"]),
    # the front
    ("both directions minimise", "nas/study/storage.py", "DIRECTIONS = [optuna.study.StudyDirection.MAXIMIZE,",
     "DIRECTIONS = [optuna.study.StudyDirection.MINIMIZE,", [PARETO]),
    ("front keeps dominated trials", "nas/study/pareto.py",
     "front = [r for r in inside if not any(dominates(_point(o), _point(r)) for o in inside)]", "front = list(inside)", [PARETO]),
    ("domination without strictness", "nas/study/pareto.py", " and (a[0] > b[0] or a[1] < b[1])", "", [PARETO]),
    ("best is the least accurate", "nas/study/pareto.py", "return max(front, key", "return min(front, key", [PARETO]),
    ("best takes the later of identical points", "nas/study/pareto.py", "key=lambda r: (r.score.value, -r.number)",
     "key=lambda r: (r.score.value, r.number)", [PARETO]),
    ("budget scope ignored", "nas/device/memory.py", '    if scope == "weights":\n', "    if False:\n", [PARETO]),
    ("budget label in kB on a log axis", "nas/report/figures.py", "        x=math.log10(budget_kb),", "        x=budget_kb,", [PARETO]),
    # training and statistics
    ("training returns the last epoch's weights", "nas/training/train.py", "    model.load_state_dict(state.best_state)\n", "",
     ["tests/test_train.py"]),
    ("best epoch chosen by loss", "nas/training/train.py", "score = (val_accuracy.value, -val_loss)", "score = (-val_loss, val_accuracy.value)",
     ["tests/test_train.py"]),
    ("best weights not copied", "nas/training/train.py", "state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}",
     "state.best_state = model.state_dict()", ["tests/test_train.py"]),
    ("Wilson interval with z = 1.645", "nas/core/stats.py", "Z_95 = 1.959963984540054", "Z_95 = 1.6448536269514722", ["tests/test_stats.py"]),
    ("Clopper-Pearson instead of Wilson", "nas/core/stats.py", 'method="wilson"', 'method="exact"',
     ["tests/test_stats.py"]),
    ("pow2 scale rounded down", "nas/model/quant.py", "round(math.log2(max_abs))", "math.floor(math.log2(max_abs))", ["tests/test_quant.py"]),
    # one definition of each limit
    ("config skips the hidden limit", "nas/model/architecture.py", '        limits.HIDDEN.check("--hidden", self.hidden)\n', "",
     ["tests/test_limits.py"]),
    ("solver answers up to 4096", "nas/device/memory.py", "max_hidden: int = limits.HIDDEN.high", "max_hidden: int = 4096",
     ["tests/test_limits.py"]),
    ("a space takes more MFCC than mel bands", "nas/study/space.py", "    if max(space.n_mfcc) > min(space.n_mels):",
     "    if False:", ["tests/test_limits.py"]),
    ("nas memory has its own hidden range", "nas/cli/options.py", 'group.add_argument("--hidden", type=limits.HIDDEN.parse,',
     'group.add_argument("--hidden", type=limits.Bound(1, 4096).parse,', ["tests/test_limits.py"]),
    # the command line
    ("the parser imports torch", "nas/cli/options.py", "import argparse\nimport sys\n", "import argparse\nimport sys\n\nimport torch  # noqa\n",
     [f"{CLI}::test_help_and_memory_do_not_load_torch"]),
    ("help omits defaults", "nas/cli/options.py", '        return f"{text} (default: {shown})".strip()', "        return text",
     [f"{CLI}::test_every_option_says_its_default"]),
    ("memory-only cache writes to disk", "nas/features/extract.py", "            return cls(directory=None)\n", "            return cls()\n",
     ["tests/test_features.py::test_memory_only_cache_writes_nothing"]),
    ("no warning for files trained on", "nas/cli/export.py", "    if result.overlap:\n", "    if False:\n",
     ["tests/test_export.py::test_evaluate_warns_when_the_files_were_trained_on"]),
    ("train Ctrl-C without the resume command", "nas/training/seeds.py",
     "            raise TrainInterrupted(path, plan.seeds[index + 1 :]) from None", "            raise",
     [f"{CLI}::test_interrupted_training_names_its_checkpoint_and_the_resume_command"]),
    ("agreement against the wrong part", "nas/training/train.py", 'agreement = float((float_classes == scores["test"][1]).mean())',
     'agreement = float((float_classes == scores["val"][1][: len(float_classes)]).mean())',
     [f"{CLI}::test_quantized_training_reports_the_integer_engine"]),
    # splits (issue 10)
    ("speaker split trains on its validation speaker", "nas/data/dataset.py",
     "train = [r for r in ordered if r.speaker not in (held_out, val_speaker)]", "train = [r for r in ordered if r.speaker != held_out]",
     ["tests/test_data.py"]),
    ("cross-validation mean of the first seed only", "nas/training/crossval.py", "return mean_interval(self.seed_means(part))",
     "return mean_interval(self.seed_means(part)[:1])", ["tests/test_crossval.py"]),
    # the device (issue 9)
    ("struct end padding not counted", "nas/device/regions.py", "padding = 0 if continuous else _round_up(size, STRUCT_ALIGN, False) - size",
     "padding = 0", [DEVICE, "tests/test_memory.py"]),
    ("GRU gate scratch counted as H", "nas/device/regions.py", '{"gru": 2, "lstm": 2, "rnn": 1}[model.cell]',
     '{"gru": 1, "lstm": 2, "rnn": 1}[model.cell]', ["tests/test_cexport.py"]),
    ("stack reserve below the deepest chain", "nas/device/regions.py", "STACK_RESERVE_BYTES = 256", "STACK_RESERVE_BYTES = 128", [DEVICE]),
    ("LSTM state written in the first pass", "nas/device/ccells.py",
     "            g[i] = (int16_t)saturate(rshift(h15, GATE_FRAC - HF), STATE_BITS);",
     "            h[i] = (STATE_T)saturate(rshift(h15, GATE_FRAC - HF), STATE_BITS);", ["tests/test_cexport.py"]),
    ("sine read from the wrong quarter", "nas/device/cfrontend.py", "-COS[k < N / 4 ? N / 4 - k : k - N / 4]", "-COS[k < N / 4 ? k : k - N / 4]",
     ["tests/test_cfrontend.py"]),
    ("a frame one sample early", "nas/device/cexport.py", "        if (s->fill == N) {{", "        if (s->fill == N - 1) {{", [DEVICE]),
    ("short recording not padded", "nas/device/cexport.py", "    if (s->frames > 0) return;", "    return;", [DEVICE]),
    ("real-FFT split without the conjugate", "nas/features/frontend.py", "b_re, b_im = re[:, (h - k) % h], -im[:, (h - k) % h]",
     "b_re, b_im = re[:, (h - k) % h], im[:, (h - k) % h]", ["tests/test_frontend.py"]),
    ("flash limit ignored", "nas/device/memory.py", 'extra = [("flash", self.flash_bytes), ("ram", self.ram_bytes)]',
     'extra = [("ram", self.ram_bytes)]', ["tests/test_memory.py"]),
    # both places that size a draw: its position on the size axis, and the cap at what fits
    ("front-end not counted by the search", "nas/study/trials.py",
     "quant, features)\n    smallest = shape.model(space.hidden_min)\n    fits = min(space.hidden_max, largest_hidden(budget, smallest, quant, features))",
     "quant, None)\n    smallest = shape.model(space.hidden_min)\n    fits = min(space.hidden_max, largest_hidden(budget, smallest, quant, None))", [f"{SEARCH}::test_the_largest_draw_is_the_largest_that_fits_with_the_front_end"]),
    ("old memory model resumed", "nas/study/settings.py", "        if other.memory_model != self.memory_model:", "        if False:",
     [f"{SEARCH}::test_a_study_sized_by_the_old_memory_model_is_not_resumed"]),
    ("Ctrl-C inside a worker's storage write shows a traceback", "nas/study/worker.py", "        if _caused_by_ctrl_c(error):",
     "        if isinstance(error, KeyboardInterrupt):",
     [f"{SEARCH}::test_a_worker_stopped_by_ctrl_c_inside_a_storage_write_exits_quietly"]),
    # issue 11: study and trial views
    ("trials.csv marks no trial on the front", "nas/report/report.py", '    row["on_front"] = record.number in on_front',
     '    row["on_front"] = False', [f"{SEARCH}::test_search_writes_the_front_files"]),
    ("a resumed search prints the earlier trials again", "nas/study/optimize.py",
     "finished_records=tuple(r for r in finished if r.number not in self.numbers_before),", "finished_records=tuple(finished),",
     [f"{SEARCH}::test_resume_continues_with_new_trials"]),
    # issue 10: selecting for new voices, augmentation, running normalisation
    ("objective ignores the speaker folds", "nas/study/record.py",
     "return self.speaker_val if self.speaker_val is not None else self.val", "return self.val",
     [f"{SEARCH}::test_speaker_folds_select_on_new_voices"]),
    ("fold speakers not spread", "nas/data/dataset.py", "ordered[(index * len(ordered)) // count]", "ordered[index]",
     ["tests/test_data.py::test_fold_speakers_spread_over_the_speakers"]),
    ("speaker folds with a speaker split", "nas/study/optimize.py", "if options.speaker_folds and options.split != OFFICIAL:", "if False:",
     [f"{SEARCH}::test_speaker_folds_need_the_official_split"]),
    ("speaker folds not compared on resume", "nas/study/settings.py", '("--speaker-folds", "speaker_folds")', '("--split", "split")',
     [f"{SEARCH}::test_resume_with_other_settings_is_refused"]),
    ("an old checkpoint resumes with today's copies", "nas/training/recipe.py", 'return cls(**({"wave_copies": 0} | values))',
     "return cls(**values)", ["tests/test_augment.py::test_a_checkpoint_from_before_the_copies_trained_without_them"]),
    ("training ignores the copies", "nas/training/train.py", "    if features.train_copies:", "    if False:",
     ["tests/test_augment.py::test_training_draws_from_the_copies"]),
    ("speed perturbation ignored", "nas/features/augment.py", "    if speed != 1.0:", "    if False:",
     ["tests/test_augment.py::test_speed_gain_and_noise_change_the_samples_as_asked"]),
    ("running mean count off by one", "nas/features/frontend.py", "return min(frame + 1 + RUNNING_PRIOR_FRAMES, RUNNING_MAX_FRAMES)",
     "return min(frame + RUNNING_PRIOR_FRAMES, RUNNING_MAX_FRAMES)",
     ["tests/test_augment.py::test_running_count_is_a_prior_then_a_moving_average"]),
    ("running division floors negatives", "nas/features/frontend.py",
     "return np.sign(values) * ((np.abs(values) + divisor // 2) // divisor)", "return (values + divisor // 2) // divisor",
     ["tests/test_augment.py::test_divide_round_is_symmetric_as_the_c_writes_it"]),
    ("C running mean never capped", "nas/device/cfrontend.py", "? frame + 1 + {RUNNING_PRIOR_FRAMES} : {RUNNING_MAX_FRAMES};",
     "? frame + 1 + {RUNNING_PRIOR_FRAMES} : frame + 1 + {RUNNING_PRIOR_FRAMES};",
     ["tests/test_cfrontend.py::test_c_running_normalisation_equals_python_per_utterance"]),
    ("running scale fitted before the running mean", "nas/features/extract.py", '        if kind == "running":  # the spread',
     "        if False:  # the spread",
     ["tests/test_augment.py::test_running_normaliser_fits_after_both_means_and_round_trips"]),
    ("running mean not in RAM", "nas/device/regions.py", '        if features.normalisation == "running":\n            members.append(',
     "        if False:\n            members.append(",
     ["tests/test_augment.py::test_the_running_mean_is_one_int32_per_coefficient_of_ram"]),
    # issue 11: the pages and the estimate
    ("confusion stored transposed", "nas/core/stats.py", "confusion_matrix(labels, predicted,", "confusion_matrix(predicted, labels,",
     [f"{SEARCH}::test_objective_is_the_integer_engines_validation_accuracy"]),
    ("history's best ignores the budget", "nas/study/pareto.py", "        best = select_best(so_far, budget)\n",
     "        best = max((r for r in so_far if r.trained), key=lambda r: r.score.value, default=None)\n",
     [f"{PARETO}::test_history_follows_the_best_within_the_budget_trial_by_trial"]),
    ("report's best ignores the budget", "nas/report/studypage.py", "    best = select_best(records, budget)\n",
     "    best = max((r for r in records if r.trained), key=lambda r: r.score.value, default=None)\n",
     [f"{PAGES}::test_report_page_content_from_the_records"]),
    ("tables sort numbers as text", "nas/report/htmlpage.py", '(isNaN(number) ? value : number);', "value;",
     [f"{PAGES}::test_tables_sort_numbers_as_numbers_and_empty_cells_last"]),
    ("pages load plotly from the network", "nas/report/htmlpage.py", "<script>{get_plotlyjs()}</script>",
     '<script src=\"https://cdn.plot.ly/plotly-3.1.0.min.js\"></script>',
     [f"{PAGES}::test_report_page_in_a_browser"]),
    ("data page hides files failing a checksum", "nas/report/datainspect.py", 'for p in report.problems if not p.startswith(str(data_dir) + ":")]',
     'for p in report.problems if not p.startswith(str(data_dir) + ":") and "checksum" not in p]',
     [f"{PAGES}::test_data_overview_lists_every_failing_file"]),
    ("estimate: more workers than cores", "nas/study/estimate.py", "parallel = max(1, min(options.workers, cores or os.cpu_count() or 1))",
     "parallel = max(1, options.workers)", ["tests/test_estimate.py"]),
    ("estimate trains the pruned configurations too", "nas/study/estimate.py", "_wall_seconds(to_run, share, trial_seconds, parallel)",
     "_wall_seconds(to_run, 1.0, trial_seconds, parallel)", ["tests/test_estimate.py"]),
    # issue 12: many hosts
    ("search start fails every running trial", "nas/study/storage.py", "    optuna.storages.fail_stale_trials(study)\n",
     "    for trial in study.get_trials(deepcopy=False, states=running):\n"
     "        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)\n",
     [f"{SEARCH}::test_a_dead_workers_trial_is_failed_and_queued_again_and_a_live_one_is_left"]),
    ("a dead worker's trial is not retried", "nas/study/storage.py",
     "heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES),", "heartbeat_stale_trial_callback=None,",
     [f"{SEARCH}::test_a_dead_workers_trial_is_failed_and_queued_again_and_a_live_one_is_left"]),
    ("SIGTERM to the main process ignored", "nas/study/optimize.py", "stop_signals = (signal.SIGINT, signal.SIGTERM)",
     "stop_signals = (signal.SIGINT,)", [f"{SEARCH}::test_interrupted_search_keeps_finished_trials"]),
    ("a lone signal not passed on to the workers", "nas/study/optimize.py", "                os.kill(worker.pid, signal.SIGINT)\n",
     "                pass\n", [f"{SEARCH}::test_interrupted_search_keeps_finished_trials"]),
    ("Ctrl-C raised inside Optuna's ask", "nas/study/interrupts.py", "before, self.immediate = self.immediate, False",
     "before, self.immediate = self.immediate, True",
     [f"{SEARCH}::test_ctrl_c_while_optuna_asks_for_a_trial_leaves_no_trial_running"]),
    # issue 13: the GRU kernel and the rungs
    ("GRU backward drops the path through z * h", "nas/model/csrc/gru.cpp", "      tzb[j] = g * z;", "      tzb[j] = 0;", ["tests/test_gru.py"]),
    ("GRU reset gate applied to the input part", "nas/model/csrc/gru.cpp", "tanh_(gib[2 * hidden + j] + r * hn)",
     "tanh_(r * gib[2 * hidden + j] + hn)", ["tests/test_gru.py"]),
    ("GRU tanh approximation off", "nas/model/csrc/gru.cpp", "p = p * x2 + 4.89352455891786e-03f;", "p = p * x2 + 4.9e-03f;",
     ["tests/test_gru.py"]),
    ("GRU backward reads h_t for h_(t-1)", "nas/model/csrc/gru.cpp", "const scalar_t* h_prev = t > 0 ? out_data + (t - 1) * out_step",
     "const scalar_t* h_prev = t > 0 ? out_data + t * out_step", ["tests/test_gru.py"]),
    ("GRU z gradient with the wrong sign", "nas/model/csrc/gru.cpp", "g * (hpb[j] - n) * z", "g * (n - hpb[j]) * z", ["tests/test_gru.py"]),
    ("GRU training never uses the kernel", "nas/model/models.py", "if uses_kernel(self.rnn) else", "if False else", ["tests/test_gru.py"]),
    ("rung margin ignored", "nas/study/rungs.py", "o.accuracy - accuracy >= margin - _TOLERANCE", "o.accuracy >= accuracy",
     ["tests/test_rungs.py"]),
    ("one margin for every rung", "nas/study/rungs.py", "return self.margins[self.epochs.index(epoch)]", "return self.margins[-1]",
     ["tests/test_rungs.py"]),
    ("rungs without their margins", "nas/study/space.py", "    if len(space.rung_margins) != len(space.rungs):", "    if False:",
     ["tests/test_rungs.py"]),
    ("larger trials stop smaller ones", "nas/study/rungs.py", "o.total_bytes <= total_bytes and ", "", ["tests/test_rungs.py"]),
    ("trials stopped before enough reached the rung", "nas/study/rungs.py", "if len(others) < RUNG_MIN_TRIALS:", "if False:",
     ["tests/test_rungs.py"]),
    ("stopped trials end complete", "nas/study/trials.py", "        if record.stopped:\n            raise optuna.TrialPruned(",
     "        if False:\n            raise optuna.TrialPruned(", ["tests/test_rungs.py"]),
    ("a trial compares itself with itself at a rung", "nas/study/rungs.py", "if trial.number != exclude and accuracy", "if accuracy",
     ["tests/test_rungs.py"]),
    ("normalisation batches padded at the front", "nas/features/extract.py", "            padded[row, : lengths[row]] = utterances[i]",
     "            padded[row, padded.shape[1] - lengths[row] :] = utterances[i]",
     ["tests/test_augment.py::test_normalising_in_batches_gives_each_utterance_what_it_gets_alone"]),
    ("checkpoints not uploaded", "nas/study/trials.py", "artifact = upload_checkpoint(trial, path, artifacts) if artifacts else None",
     "artifact = None", [f"{SEARCH}::test_checkpoints_reach_the_artifact_store_and_another_host_exports_them"]),
    # issue 21: the whole budget, reliability
    ("no band quota", "nas/study/trials.py", "        if sizes is not None:\n            queue_band_quota(study, sizes)",
     "        if False:\n            queue_band_quota(study, sizes)",
     ["tests/test_sizes.py::test_every_band_gets_its_share_even_when_the_sampler_wants_the_smallest"]),
    ("a band trial queued beside a waiting one", "nas/study/trials.py",
     "    if any(t.state == optuna.trial.TrialState.WAITING for t in trials):", "    if False:",
     ["tests/test_sizes.py::test_no_band_trial_is_queued_while_a_trial_waits"]),
    ("band shares rounded down", "nas/study/sizes.py", "counts[band] < math.ceil(min_share * total)",
     "counts[band] < math.floor(min_share * total)",
     ["tests/test_sizes.py"]),
    ("the size position ignores the shape", "nas/study/trials.py",
     "hidden = min(fits, hidden_for_position(shape, position, sizes, budget, space.hidden_min, space.hidden_max))",
     "hidden = round(space.hidden_min * (fits / space.hidden_min) ** position)",
     ["tests/test_sizes.py::test_one_size_position_is_one_size_whatever_the_shape"]),
    ("rungs compare across size bands", "nas/study/rungs.py", "            others = [o for o in others if o.band == band]\n",
     "            pass\n", ["tests/test_rungs.py"]),
    ("rung results lose their band", "nas/study/rungs.py", 'trial.user_attrs["total_bytes"], trial.user_attrs.get(BAND_ATTR))',
     'trial.user_attrs["total_bytes"], None)', ["tests/test_rungs.py"]),
    ("dead processes wait for the heartbeat", "nas/study/storage.py", "        if is_gone(trial.user_attrs.get(WORKER_ATTR)):",
     "        if False:", [f"{SEARCH}::test_a_dead_process_on_this_host_has_its_trial_queued_again_at_once"]),
    # confirming the front (issue 21)
    ("confirmed front on the trials' own draw", "nas/study/confirm.py",
     "coordinates = {p.record.number: (p.val_mean, p.total_bytes) for p in within}",
     "coordinates = {p.record.number: (100 * p.record.val.value, p.total_bytes) for p in within}",
     ["tests/test_confirm.py::test_confirmed_front_is_computed_on_the_seed_means"]),
    ("best confirmed point by its own draw", "nas/study/confirm.py",
     "return min(within, key=lambda p: (-p.val_mean, p.total_bytes), default=None)",
     "return min(within, key=lambda p: (-p.record.val.value, p.total_bytes), default=None)",
     ["tests/test_confirm.py::test_confirmed_front_is_computed_on_the_seed_means"]),
    ("export seed chosen on test", "nas/study/confirm.py", "key=lambda r: (abs(100 * r.val.value - mean), r.seed)",
     "key=lambda r: (-r.test.value, r.seed)",
     ["tests/test_confirm.py::test_export_takes_the_seed_closest_to_the_mean_on_validation_not_test"]),
    ("export --best ignores the confirmation", "nas/bundle/selection.py", "    if trial is None and points:", "    if False:",
     ["tests/test_confirm.py::test_export_best_is_the_best_confirmed_point_not_the_best_draw"]),
    ("confirmation candidates ignore the size bands", "nas/study/confirm.py",
     "    for band in sorted({r.size_band for r in front if r.size_band is not None}, reverse=True):", "    for band in []:",
     ["tests/test_confirm.py::test_candidates_take_the_best_of_each_size_band_first"]),
    ("a resumed confirmation runs its stored runs again", "nas/study/confirm.py",
     "return [job for job in jobs if job.key not in study_attrs]", "return list(jobs)",
     ["tests/test_confirm.py::test_an_interrupted_confirmation_resumes_with_the_runs_it_lacks"]),
    ("the search's top fidelity drifts from nas train's recipe", "nas/spaces/default.toml", "epochs = 100\npatience = 30",
     "epochs = 40\npatience = 15", ["tests/test_confirm.py::test_the_default_space_trains_the_full_recipe_of_nas_train"]),
    ("one seed counts as a confirmation", "nas/study/confirm.py", "        if len(own) >= MIN_CONFIRM_SEEDS:", "        if own:",
     ["tests/test_confirm.py::test_one_run_is_not_a_confirmation"]),
    ("--confirm-seeds 1 accepted", "nas/study/confirm.py", "    if 0 < seeds < MIN_CONFIRM_SEEDS or seeds < 0:", "    if seeds < 0:",
     ["tests/test_confirm.py::test_one_run_is_not_a_confirmation"]),
    ("a speaker-split study's own runs taken as folds", "nas/study/confirm.py",
     "tuple(r for r in mine if r.split != study_split)))", 'tuple(r for r in mine if r.split.startswith("speaker:"))))',
     ["tests/test_confirm.py::test_a_speaker_split_study_keeps_its_own_runs_as_seeds_with_checkpoints_not_as_folds"]),
    ("a speaker-split study's runs keep no checkpoint", "nas/study/confirm.py", "    if task.job.split != task.study_split:",
     '    if task.job.split.startswith("speaker:"):',
     ["tests/test_confirm.py::test_a_speaker_split_study_keeps_its_own_runs_as_seeds_with_checkpoints_not_as_folds"]),
    ("export --max-kb below the confirmed points fails", "nas/bundle/selection.py",
     "        if point is not None:\n            return confirmed_record(point), point",
     '        if point is None:\n            raise NasError("no confirmed point fits")\n        return confirmed_record(point), point',
     ["tests/test_confirm.py::test_export_max_kb_below_every_confirmed_point_takes_the_best_unconfirmed_trial"]),
    ("the estimate leaves out the confirmation", "nas/study/estimate.py", "    confirm_wall = runs * run_seconds / parallel",
     "    confirm_wall = 0.0", ["tests/test_estimate.py::test_the_estimate_includes_the_confirmation"]),
    ("--quick resumes a full study", "nas/study/settings.py", "        if other.quick != self.quick:", "        if False:",
     [f"{SEARCH}::test_quick_is_its_own_study_trained_shorter_and_never_confirmed"]),
    ("another host's pids read as this host's", "nas/study/liveness.py",
     'or worker.get("host") != socket.gethostname() or', "or",
     [f"{SEARCH}::test_a_dead_process_on_this_host_has_its_trial_queued_again_at_once"]),
    ("a reused pid reads as alive", "nas/study/liveness.py", "and started != recorded", "and False",
     [f"{SEARCH}::test_a_reused_pid_is_a_dead_worker"]),
    ("running trials not counted", "nas/study/trials.py", "    states = (*FINISHED, optuna.trial.TrialState.RUNNING)\n",
     "    states = FINISHED\n", [f"{SEARCH}::test_two_workers_finish_exactly_the_trials_asked"]),
    ("a budget nothing fits creates a study", "nas/study/optimize.py",
     "    search_size_range(options.searched_space, options.budget)  # a budget nothing fits", "    # a budget nothing fits",
     [f"{SEARCH}::test_budget_too_small_for_anything"]),
    # command-line habits and the API (docs/cli.md, docs/api.md)
    ("nas memory over budget exits 0", "nas/cli/memory.py", "    code = EXIT_CHECK_FAILED if broken else 0", "    code = 0",
     [f"{HABITS}::test_memory_over_budget_exits_1_and_says_so_in_json"]),
    ("a storage password printed", "nas/core/urls.py", '    return _PASSWORD.sub(lambda m: f"{m[\'head\']}{MASK}@", text)',
     "    return text", [f"{HABITS}::test_a_password_in_a_storage_url_is_never_printed"]),
    ("a resume needs every option again", "nas/study/request.py", "    return stored if value is None else value", "    return value",
     [f"{HABITS}::test_a_resume_needs_only_the_study_name"]),
    ("a refused resume names only the first difference", "nas/study/storage.py", "{'; '.join(differences)}", "{differences[0]}",
     [f"{HABITS}::test_a_refused_resume_lists_every_difference"]),
    ("nas export ignores --checkpoint", "nas/cli/export.py", "    if args.checkpoint:\n", "    if False:\n",
     [f"{HABITS}::test_export_takes_a_checkpoint_of_nas_train"]),
    ("--json output mixed with progress", "nas/cli/output.py", "        console.file = sys.stderr\n", "        pass\n",
     [f"{HABITS}::test_search_json_summary_is_alone_on_stdout"]),
    ("a bad path ends in a traceback", "nas/cli/main.py", "    except OSError as error:", "    except NotImplementedError as error:",
     [f"{HABITS}::test_a_bad_path_is_one_line_not_a_traceback"]),
    ("import nas sets Optuna's verbosity", "nas/study/storage.py", 'OBJECTIVE_NAMES = ["val_accuracy", "total_bytes"]',
     'optuna.logging.set_verbosity(optuna.logging.WARNING)\nOBJECTIVE_NAMES = ["val_accuracy", "total_bytes"]',
     [f"{API}::test_importing_nas_changes_no_global_state"]),
    ("a library call leaves torch's threads changed", "nas/training/recipe.py", "        torch.set_num_threads(before)\n", "        pass\n",
     [f"{API}::test_a_library_call_leaves_torch_threads_as_it_found_them"]),
    ("a module over 400 lines", "nas/core/version.py", '__version__ = "0.1.0"\n', '__version__ = "0.1.0"\n' + "# padding\n" * 400,
     ["tests/test_architecture.py::test_no_module_is_over_400_lines"]),
    ("a function over 100 lines", "nas/core/urls.py", '    """`text` with the password of every URL in it replaced by MASK."""\n',
     '    """`text` with the password of every URL in it replaced by MASK."""\n' + "    pass\n" * 100,
     ["tests/test_architecture.py::test_no_function_is_over_100_lines"]),
    ("C that differs from the engine exits 0", "nas/bundle/export.py",
     "        return bool(self.c_logits_identical and (self.c_predicted == self.predicted).all())", "        return True",
     ["tests/test_export.py::test_exported_c_fed_pcm_agrees_on_real_test_files"]),
]  # fmt: skip


def main(selection: str = "") -> int:
    missed = 0
    for bug, path, right, wrong, tests in BUGS:
        if selection not in bug:
            continue
        file = REPO / path
        original = file.read_text()
        if original.count(right) != 1:
            print(f"pattern not found  {bug} ({path})", flush=True)
            missed += 1
            continue
        file.write_text(original.replace(right, wrong))
        try:
            command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
            result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        finally:
            file.write_text(original)
        caught = result.returncode != 0
        missed += not caught
        print(f"{'red (caught)' if caught else 'GREEN (missed)':18} {bug}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
