"""The model summary printed as training starts: Lightning's rich table, minus its FLOPs.

Lightning counts FLOPs only by running ``example_input_array`` through the model, and a NER batch
has no fixed shape to give it, so its summary showed a column of zeros and "Total FLOPs: 0".
The parameter counts, sizes and modes are Lightning's own.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count
from lightning.pytorch.utilities.model_summary.model_summary import get_formatted_model_size


class ModelSummary(RichModelSummary):
    """:class:`RichModelSummary` without the FLOPs it did not count."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        if not total_flops:
            summary_data = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        table.add_column(" ", style="dim")
        for name, _ in summary_data[1:]:
            table.add_column(name, justify="left" if name in ("Name", "Type", "Mode") else "right")
        for row in zip(*(values for _, values in summary_data), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        frozen = total_parameters - trainable_parameters
        grid = Table.grid(expand=True)
        grid.add_column()
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(frozen))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
            *([("Total FLOPs", get_human_readable_count(total_flops))] if total_flops else []),
        ):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console.print(grid)
