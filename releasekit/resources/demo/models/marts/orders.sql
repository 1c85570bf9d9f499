with

orders as (

    select * from {{ ref('stg_orders') }}

),

order_items as (

    select * from {{ ref('stg_order_items') }}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

order_totals as (

    select
        order_id,
        count(*) as item_count,
        sum(quantity) as unit_count,
        sum(line_amount) as subtotal
    from order_items
    group by order_id

),

order_payments as (

    select
        order_id,
        count(*) as payment_count,
        sum(amount) as amount_paid
    from payments
    group by order_id

),

final as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.status,
        coalesce(order_totals.item_count, 0) as item_count,
        coalesce(order_totals.unit_count, 0) as unit_count,
        coalesce(order_totals.subtotal, 0) as subtotal,
        coalesce(order_payments.amount_paid, 0) as amount_paid,
        coalesce(order_payments.payment_count, 0) > 1 as is_split_payment,
        -- Returns and cancellations never count towards revenue.
        orders.status in ('shipped', 'completed') as is_revenue
    from orders
    left join order_totals on orders.order_id = order_totals.order_id
    left join order_payments on orders.order_id = order_payments.order_id

)

select * from final
