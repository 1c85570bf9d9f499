with

orders as (

    select * from {{ ref('orders') }}

),

customers as (

    select * from {{ ref('stg_customers') }}
    {% if not var('include_test_customers') %}
        where not is_test_customer
    {% endif %}

),

revenue_orders as (

    select
        orders.order_date,
        orders.unit_count,
        orders.subtotal
    from orders
    inner join customers on orders.customer_id = customers.customer_id
    where orders.is_revenue

),

final as (

    select
        order_date,
        count(*) as order_count,
        sum(unit_count) as units_sold,
        sum(subtotal) as revenue,
        round(avg(subtotal), 2) as average_order_value
    from revenue_orders
    group by order_date

)

select * from final
