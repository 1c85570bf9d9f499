{#- Source systems store money as integer cents; reports show dollars. -#}
{% macro cents_to_dollars(column_name, scale=2) -%}
    cast(({{ column_name }}) / 100.0 as decimal(18, {{ scale }}))
{%- endmacro %}
