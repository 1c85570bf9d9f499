with

customers as (

    select * from {{ ref('stg_customers') }}
    {% if not var('include_test_customers') %}
        where not is_test_customer
    {% endif %}

),

orders as (

    select * from {{ ref('orders') }}

),

customer_orders as (

    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as most_recent_order_date,
        count(*) as order_count,
        sum(case when is_revenue then subtotal else 0 end) as lifetime_value
    from orders
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.full_name,
        customers.email,
        customers.country_code,
        customers.signed_up_on,
        customers.is_test_customer,
        customer_orders.first_order_date,
        customer_orders.most_recent_order_date,
        coalesce(customer_orders.order_count, 0) as order_count,
        coalesce(customer_orders.lifetime_value, 0) as lifetime_value,
        case
            when coalesce(customer_orders.lifetime_value, 0) >= 500 then 'gold'
            when coalesce(customer_orders.lifetime_value, 0) >= 150 then 'silver'
            when coalesce(customer_orders.order_count, 0) > 0 then 'bronze'
            else 'prospect'
        end as customer_tier
    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id

)

select * from final
