with

order_items as (

    select * from {{ ref('stg_order_items') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

products as (

    select * from {{ ref('stg_products') }}

),

product_sales as (

    select
        order_items.product_id,
        count(distinct order_items.order_id) as order_count,
        sum(
            case when orders.status != 'cancelled' then order_items.quantity else 0 end
        ) as units_sold,
        sum(
            case
                when orders.status in ('returned', 'return_pending') then order_items.quantity
                else 0
            end
        ) as units_returned,
        sum(
            case
                when orders.status in ('shipped', 'completed') then order_items.line_amount
                else 0
            end
        ) as net_revenue
    from order_items
    inner join orders on order_items.order_id = orders.order_id
    group by order_items.product_id

),

final as (

    select
        products.product_id,
        products.sku,
        products.product_name,
        products.category,
        products.price,
        coalesce(product_sales.order_count, 0) as order_count,
        coalesce(product_sales.units_sold, 0) as units_sold,
        coalesce(product_sales.units_returned, 0) as units_returned,
        coalesce(product_sales.net_revenue, 0) as net_revenue,
        case
            when coalesce(product_sales.units_sold, 0) = 0 then 0
            else round(product_sales.units_returned / product_sales.units_sold, 3)
        end as return_rate
    from products
    left join product_sales on products.product_id = product_sales.product_id

)

select * from final
