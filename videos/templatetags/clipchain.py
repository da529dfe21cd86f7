from django import template

register = template.Library()


@register.filter
def seconds(value: float | int | None) -> str:
    """12 -> "12 s", 125 -> "2 min 5 s", 7300 -> "2 h 1 min"."""
    if value is None:
        return ""
    total = int(value)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
